/**
 * Peer tools: the external programs (tar, cp, busybox, ...) some tests
 * compare strata against. A developer without one gets a skipped test; CI
 * gets a failure, so a missing install can never turn a suite silently green.
 */
import { spawn } from 'node:child_process'
import { accessSync, constants, statSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import type { TestContext } from 'node:test'

/**
 * The absolute path `name` resolves to on PATH, or undefined. Scans PATH
 * itself (which(1) semantics: first executable regular file wins) so no shell
 * or `which` binary is needed. A name containing '/' is checked as given.
 */
export function findOnPath(name: string, pathVar: string | undefined = process.env.PATH): string | undefined {
  const candidates = name.includes('/') ? [name] : (pathVar ?? '').split(delimiter).map((d) => join(d === '' ? '.' : d, name))
  for (const candidate of candidates) {
    try {
      // statSync follows symlinks, as exec does: a link to busybox counts.
      if (!statSync(candidate).isFile()) continue
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // not there or not executable: keep scanning, like which(1)
    }
  }
  return undefined
}

/** Skips the test (or, under CI, fails it) with `what` as the reason. */
function missing(t: TestContext, what: string, ciWhat: string): false {
  if (process.env.CI) throw new Error(`${ciWhat} is required in CI but missing; .ci/run must install it`)
  t.skip(what)
  return false
}

/**
 * True when every command in `names` is on PATH. Otherwise skips the test
 * and returns false (callers `if (!requireTool(t, 'tar')) return`), except
 * when CI is set: then it throws, so the test fails instead of hiding.
 */
export function requireTool(t: TestContext, ...names: string[]): boolean {
  for (const name of names) {
    if (findOnPath(name) === undefined) return missing(t, `needs ${name} (not installed)`, `peer tool ${name}`)
  }
  return true
}

/** True when running as root (mknod, chown and security.* xattrs need it); skips or, in CI, fails otherwise. */
export function requireRoot(t: TestContext): boolean {
  if (process.getuid?.() === 0) return true
  return missing(t, 'needs root', 'root')
}

export interface RunOptions {
  cwd?: string
  /** Written to the child's stdin, which is then closed. Without it stdin is empty. */
  input?: Buffer
  env?: NodeJS.ProcessEnv
}

export interface RunResult {
  /** Raw bytes: peers like tar write binary output. */
  stdout: Buffer
  stderr: string
}

/** Quotes a word for the error message only when it needs it, so the line can be pasted into a shell. */
function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`
}

/**
 * Runs `cmd args` without a shell and collects its output. Rejects when it
 * cannot start, exits non-zero or dies by a signal, with an Error naming
 * the command line, the exit status and stderr (the part worth reading
 * when a peer disagrees with us).
 */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const line = [cmd, ...args].map(shellWord).join(' ')
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (c: Buffer) => out.push(c))
    child.stderr.on('data', (c: Buffer) => err.push(c))
    // A child that exits without reading its stdin makes our write fail with
    // EPIPE; the exit status is the interesting part, so swallow that.
    child.stdin.on('error', () => {})
    child.stdin.end(opts.input)
    child.on('error', (e) => reject(new Error(`${line}: could not run: ${e.message}`, { cause: e })))
    child.on('close', (code, signal) => {
      const stderr = Buffer.concat(err).toString()
      if (code === 0) {
        resolve({ stdout: Buffer.concat(out), stderr })
        return
      }
      const status = signal !== null ? `killed by ${signal}` : `exit code ${code}`
      reject(new Error(`${line} failed (${status})${stderr.trim() === '' ? '' : `:\n${stderr.trimEnd()}`}`))
    })
  })
}

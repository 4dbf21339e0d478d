/**
 * Running the built `strata` command as a user would: a child process on
 * a given data root, stdin from a file or bytes, stdout kept as bytes
 * (save writes tars there). `strataOnTty` runs it on a pseudo-terminal
 * (util-linux script(1)), for what only happens on a terminal: progress
 * bars, and save refusing to write a tar to one.
 */
import { execFileSync, spawn } from 'node:child_process'
import { closeSync, openSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const REPO = fileURLToPath(new URL('../../../', import.meta.url))

/**
 * The command users get: package.json's "bin" (the bundle that
 * scripts/bundle-cli.mjs makes from tsc's output), so the tests run what
 * `npm link` installs.
 */
export const STRATA_CLI = join(REPO, (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { bin: { strata: string } }).bin.strata)

/** The newest mtime of the .js files under `dir` (tsc's output). */
function newestJs(dir: string): number {
  let newest = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) {
      if (!e.name.startsWith('bundle')) newest = Math.max(newest, newestJs(join(dir, e.name)))
    } else if (e.name.endsWith('.js')) newest = Math.max(newest, statSync(join(dir, e.name)).mtimeMs)
  }
  return newest
}

/**
 * Rebuilds the bundle when tsc's output is newer than it (`npx tsc -p .`
 * alone, then a test), so a test never runs a stale command.
 */
function ensureBundle(): void {
  let built = 0
  try {
    built = statSync(STRATA_CLI).mtimeMs
  } catch {
    // not built yet
  }
  if (built < newestJs(join(REPO, 'dist/src'))) execFileSync(process.execPath, [join(REPO, 'scripts/bundle-cli.mjs')], { stdio: 'inherit' })
}
ensureBundle()

export interface StrataRunOptions {
  /** The data root (--root). */
  root: string
  /** The storage driver (-s); default the CLI's own choice. */
  driver?: string
  /** A file to connect to stdin, or bytes to write to it; stdin is empty (/dev/null) otherwise. */
  stdinFile?: string
  input?: Buffer
  /** The working directory; default the test's. */
  cwd?: string
  /** Kill the child (SIGKILL) after this many ms; the result then has code 128. */
  timeoutMs?: number
}

export interface StrataResult {
  code: number
  stdout: Buffer
  stderr: string
  /** stdout as text, for the verbs that print text. */
  text: string
}

function globalArgs(opts: StrataRunOptions): string[] {
  return ['--root', opts.root, ...(opts.driver === undefined ? [] : ['-s', opts.driver])]
}

/** Runs `strata --root ROOT [-s DRIVER] args...` and collects its exit status and output; never rejects on a non-zero exit. */
export function strata(args: string[], opts: StrataRunOptions): Promise<StrataResult> {
  return new Promise((resolve, reject) => {
    const stdinFd = opts.stdinFile !== undefined ? openSync(opts.stdinFile, 'r') : undefined
    const stdin = stdinFd ?? (opts.input !== undefined ? 'pipe' : 'ignore')
    const env = { ...process.env, STRATA_ROOT: '', STRATA_DRIVER: '' }
    let child
    try {
      child = spawn(process.execPath, [STRATA_CLI, ...globalArgs(opts), ...args], { stdio: [stdin, 'pipe', 'pipe'], env, ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }), ...(opts.timeoutMs === undefined ? {} : { timeout: opts.timeoutMs, killSignal: 'SIGKILL' as const }) })
    } finally {
      if (stdinFd !== undefined) closeSync(stdinFd)
    }
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout!.on('data', (c: Buffer) => out.push(c))
    child.stderr!.on('data', (c: Buffer) => err.push(c))
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => {}) // a CLI that fails early does not read its stdin
      child.stdin!.end(opts.input)
    }
    child.on('error', reject)
    child.on('close', (code, signal) => {
      const stdout = Buffer.concat(out)
      resolve({ code: code ?? (signal !== null ? 128 : -1), stdout, stderr: Buffer.concat(err).toString(), text: stdout.toString() })
    })
  })
}

/** Quotes a word for sh. */
function sh(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`
}

/**
 * Runs strata with stdout and stderr on a pseudo-terminal `columns` wide
 * (stdin stays the terminal too). The terminal turns "\n" into "\r\n";
 * the output comes back as the terminal received it, escapes and all.
 */
export function strataOnTty(args: string[], opts: StrataRunOptions & { columns?: number }): Promise<{ code: number; output: string }> {
  const cmd = `stty cols ${opts.columns ?? 150} rows 50; exec ${[process.execPath, STRATA_CLI, ...globalArgs(opts), ...args].map(sh).join(' ')}`
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qefc', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, STRATA_ROOT: '', STRATA_DRIVER: '', TERM: 'xterm' } })
    const out: Buffer[] = []
    child.stdout.on('data', (c: Buffer) => out.push(c))
    child.stderr.on('data', (c: Buffer) => out.push(c))
    child.stdin.end()
    child.on('error', reject)
    child.on('close', (code) => resolve({ code: code ?? -1, output: Buffer.concat(out).toString() }))
  })
}

/**
 * The test VM from TypeScript: runs one command in Debian's kernel under
 * qemu through scripts/vm/run.sh (see its header for what the guest is),
 * for what this machine's kernel lacks (device-mapper).
 *
 * The guest sees this machine's root read-only, so the project's dist/ and
 * node run there as they are; files come back through `share` directories
 * (read-write, same path inside and out). Output streams to `onOutput` as it
 * comes from the serial console, and is returned whole at the end.
 */
import { spawn } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { findOnPath } from './peers.js'

/** The repository root (this file is dist/test/helpers/vm.js or test/helpers/vm.ts). */
export const REPO_ROOT = (() => {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir)
    if (up === dir) throw new Error('cannot find the repository root above test/helpers')
    dir = up
  }
  return dir
})()

export const VM_SCRIPT = join(REPO_ROOT, 'scripts/vm/run.sh')

export interface VmRunOptions {
  /** Seconds before the VM is killed (run.sh's --timeout; default 600). */
  timeoutSec?: number
  /** Guest memory in MiB (default 4096). */
  memMiB?: number
  /** Host directories shared read-write at the same path in the guest. */
  shares?: string[]
  /** Extra tmpfs mounts in the guest (/tmp and /run always are). */
  tmpfs?: string[]
  /** The command's environment additions (CI, PATH, HOME are set already). */
  env?: Record<string, string>
  /** The command's working directory in the guest (default: the repository root). */
  cwd?: string
  /** Receives the console output as it arrives. */
  onOutput?: (chunk: string) => void
  /** Keeps the whole serial console (boot included) in this file. */
  logFile?: string
}

export interface VmRunResult {
  /** The command's exit status; 124 when the VM timed out, 125 when it failed to boot or run. */
  code: number
  /** What the command wrote (stdout and stderr together), and run.sh's own messages after it. */
  output: string
  /** Wall time of the whole run, boot included. */
  seconds: number
}

/** Why the VM cannot run here, or undefined when it can. */
export function vmUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (9p passthrough, modules, device-mapper)'
  for (const tool of ['qemu-system-x86_64', 'modprobe', 'cpio', 'busybox']) {
    if (findOnPath(tool) === undefined) return `needs ${tool} (scripts/install-deps.sh installs it)`
  }
  let kernels: string[] = []
  try {
    kernels = readdirSync('/boot').filter((n) => n.startsWith('vmlinuz-')).map((n) => n.slice('vmlinuz-'.length))
  } catch {
    // no /boot: no kernel
  }
  if (!kernels.some((k) => existsSync(`/lib/modules/${k}/modules.dep`))) return 'needs a kernel with modules in /boot (linux-image-amd64)'
  return undefined
}

/** Runs `command` (argv) in a fresh VM and waits for it. Never rejects for the command's own failure: look at `code`. */
export function runInVm(command: string[], opts: VmRunOptions = {}): Promise<VmRunResult> {
  const args = [VM_SCRIPT, '--timeout', String(opts.timeoutSec ?? 600), '--mem', String(opts.memMiB ?? 4096), '--cwd', opts.cwd ?? REPO_ROOT]
  for (const s of opts.shares ?? []) args.push('--share', s)
  for (const t of opts.tmpfs ?? []) args.push('--tmpfs', t)
  for (const [k, v] of Object.entries(opts.env ?? {})) args.push('--env', `${k}=${v}`)
  if (opts.logFile !== undefined) args.push('--log', opts.logFile)
  args.push('--', ...command)
  const started = process.hrtime.bigint()
  return new Promise((resolve, reject) => {
    const child = spawn('bash', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    const take = (chunk: Buffer): void => {
      const text = chunk.toString('utf8')
      output += text
      opts.onOutput?.(text)
    }
    child.stdout.on('data', take)
    child.stderr.on('data', take)
    child.once('error', reject)
    child.once('close', (code, signal) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9
      resolve({ code: code ?? (signal === null ? 125 : 128), output, seconds })
    })
  })
}

/** Runs a shell script (sh -c) in the VM. */
export function runShellInVm(script: string, opts: VmRunOptions = {}): Promise<VmRunResult> {
  return runInVm(['sh', '-c', script], opts)
}

/** One test result from a TAP stream (node --test --test-reporter=tap). */
export interface TapResult {
  /** Names of the enclosing suites and the test, outermost first. */
  path: string[]
  ok: boolean
  skip: string | undefined
  /** The YAML diagnostic block that followed the line (error, stack), for failures. */
  detail: string
}

/**
 * Parses node's TAP output into leaf results: every "ok"/"not ok" line
 * whose test had no subtests of its own. Subtests are indented 4 spaces
 * per level and announced by "# Subtest: NAME".
 */
export function parseTap(text: string): TapResult[] {
  const lines = text.split('\n')
  const out: TapResult[] = []
  const stack: string[] = []
  const hadChildren = new Set<number>()
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    const sub = /^( *)# Subtest: (.*)$/.exec(line)
    if (sub !== null) {
      const depth = sub[1]!.length / 4
      stack.length = depth
      stack[depth] = sub[2]!
      if (depth > 0) hadChildren.add(depth - 1)
      continue
    }
    const res = /^( *)(ok|not ok) \d+ - (.*?)(?: # (SKIP|TODO)\b ?(.*))?$/.exec(line)
    if (res === null) continue
    const depth = res[1]!.length / 4
    const leaf = !hadChildren.has(depth)
    hadChildren.delete(depth)
    const detail: string[] = []
    for (let j = i + 1; j < lines.length && /^ *(---|\.\.\.|  )/.test(lines[j]!) && !/^ *(ok|not ok) \d/.test(lines[j]!.trimStart()); j++) {
      detail.push(lines[j]!)
      if (lines[j]!.trim() === '...') break
    }
    if (!leaf) continue
    out.push({ path: [...stack.slice(0, depth), res[3]!], ok: res[2] === 'ok', skip: res[4] === 'SKIP' ? res[5] || 'skipped' : undefined, detail: detail.join('\n') })
    stack.length = depth
  }
  return out
}

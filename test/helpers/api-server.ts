/**
 * `strata serve` for tests, as a user runs it: the built CLI in a child
 * process on a private data root, listening on a private unix socket,
 * stopped by its PID (SIGTERM, then SIGKILL) when the test ends; and the
 * real clients pointed at it: the docker CLI 20.10 (/usr/bin/docker) and
 * 28.x (/usr/local/bin/docker) with a private client config, raw HTTP
 * over the socket, and a busybox image to start from (imported with the
 * strata CLI, GNU tar'd from busybox-static).
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { request, type IncomingHttpHeaders } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { testDataRoot } from './archive-fixtures.js'
import { makeBusyboxRootfs } from './fixtures.js'
import { run, type RunResult } from './peers.js'
import { STRATA_CLI, strata } from './strata-cli.js'

export const DOCKER_20 = '/usr/bin/docker'
export const DOCKER_28 = '/usr/local/bin/docker'

export interface StrataServe {
  /** `unix:///.../strata.sock` */
  host: string
  socket: string
  root: string
  pid: number
  /** What the server printed so far (stdout and stderr). */
  output(): string
  /** Runs a docker client against the server; rejects on a non-zero exit. */
  docker(bin: string, args: string[], input?: Buffer): Promise<RunResult>
  /** Environment for a client process (DOCKER_HOST, a private DOCKER_CONFIG, nothing else of docker's). */
  clientEnv(): NodeJS.ProcessEnv
  /** Stops the server (SIGTERM) and resolves with its exit code; idempotent. */
  stop(): Promise<number | null>
}

export interface ServeOptions {
  root?: string
  driver?: string
  /** Extra arguments for `serve`. */
  args?: string[]
}

/** A short scratch dir (socket paths are limited to 107 bytes), removed when `t` ends. */
export function shortTempDir(t: TestContext, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir().length < 40 ? tmpdir() : '/tmp', prefix))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** One HTTP exchange over a unix socket, the body collected. */
export interface RawResponse {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
  text: string
  json<T = unknown>(): T
}

export function httpUnix(socket: string, method: string, path: string, opts: { body?: Buffer | string; headers?: Record<string, string>; timeoutMs?: number } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, method, path, headers: { Host: 'docker', ...(opts.headers ?? {}) }, timeout: opts.timeoutMs ?? 30_000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('error', reject)
      res.on('end', () => {
        const body = Buffer.concat(chunks)
        const text = body.toString()
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text, json: <T>() => JSON.parse(text) as T })
      })
    })
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within ${opts.timeoutMs ?? 30_000} ms`)))
    req.on('error', reject)
    req.end(opts.body)
  })
}

export async function startStrataServe(t: TestContext, opts: ServeOptions = {}): Promise<StrataServe> {
  // Hooks run oldest first: the server must be stopped before its data root is unmounted and removed (a server still
  // putting a container's mount away raced the removal: umount2 EINVAL in api-archive's teardown).
  // Then its containers go, by the strata CLI (rm -f kills a running one and puts its layers away), while the root
  // is still there: no container outlives the test.
  let stopFirst: (() => Promise<number | null>) | undefined
  t.after(async () => {
    await stopFirst?.()
    await removeAllContainers(root)
  })
  const root = opts.root ?? testDataRoot(t, 'strata-test-api-')
  const dir = shortTempDir(t, 'strata-api-')
  const socket = join(dir, 'strata.sock')
  const clientConfig = join(dir, 'client')
  const args = [STRATA_CLI, '--root', root, ...(opts.driver === undefined ? [] : ['-s', opts.driver]), 'serve', '-H', `unix://${socket}`, ...(opts.args ?? [])]
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, STRATA_ROOT: '', STRATA_DRIVER: '' } })
  let output = ''
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()))
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()))
  let exitCode: number | null | undefined
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve((exitCode = code))))
  let stopping: Promise<number | null> | undefined
  const stop = (): Promise<number | null> => {
    stopping ??= (async () => {
      if (exitCode !== undefined || child.pid === undefined) return exitCode ?? null
      process.kill(child.pid, 'SIGTERM')
      const timer = setTimeout(() => exitCode === undefined && process.kill(child.pid!, 'SIGKILL'), 15_000)
      const code = await exited
      clearTimeout(timer)
      return code
    })()
    return stopping
  }
  stopFirst = stop
  const deadline = Date.now() + 30_000
  for (;;) {
    if (exitCode !== undefined) throw new Error(`strata serve exited (${exitCode}) before answering: ${output}`)
    if (existsSync(socket)) {
      try {
        if ((await httpUnix(socket, 'GET', '/_ping', { timeoutMs: 2000 })).status === 200) break
      } catch {
        // not answering yet
      }
    }
    if (Date.now() > deadline) throw new Error(`strata serve did not answer /_ping on ${socket} within 30 s: ${output}`)
    await sleep(50)
  }
  const host = `unix://${socket}`
  const clientEnv = (): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: host, DOCKER_CONFIG: clientConfig }
    for (const k of ['DOCKER_CONTEXT', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH', 'DOCKER_API_VERSION', 'DOCKER_BUILDKIT']) delete env[k]
    return env
  }
  return {
    host,
    socket,
    root,
    pid: child.pid!,
    output: () => output,
    clientEnv,
    docker: (bin, dockerArgs, input) => run(bin, dockerArgs, { env: clientEnv(), ...(input === undefined ? {} : { input }) }),
    stop,
  }
}

let busyboxTar: Promise<Buffer> | undefined

/** A busybox root filesystem as a GNU tar (made once per process). */
export function busyboxRootfsTar(t: TestContext): Promise<Buffer> {
  busyboxTar ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-test-api-bb-'))
    try {
      await makeBusyboxRootfs(dir)
      return (await run('tar', ['--numeric-owner', '-C', dir, '-cf', '-', '.'])).stdout
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })()
  void t
  return busyboxTar
}

/** Imports busybox as `tag` into `root` with the strata CLI; returns its image ID. */
export async function importBusybox(t: TestContext, root: string, tag = 'busybox:latest'): Promise<string> {
  const r = await strata(['import', '-c', 'CMD ["sh"]', '-', tag], { root, input: await busyboxRootfsTar(t) })
  assert.equal(r.code, 0, r.stderr)
  return r.text.trim()
}

/** A docker command's exit code and output, whatever the code. */
export function dockerOn(s: StrataServe | { clientEnv(): NodeJS.ProcessEnv }, args: string[], bin = DOCKER_20): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env: s.clientEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

/** Every container of the data root removed by the strata CLI (rm -f kills a running one). */
async function removeAllContainers(root: string): Promise<void> {
  // A root removed already (a caller's own, cleaned first) would only be made anew by the CLI's open.
  if (!existsSync(join(root, 'containers'))) return
  const ids = (await strata(['ps', '-aq', '--no-trunc'], { root })).text.split('\n').filter((l) => l !== '')
  for (const id of ids) await strata(['rm', '-f', id], { root })
}

/** Pushes the root's busybox to `remote:1` with the strata CLI, then drops that tag again (the registry holds the image; the root only busybox:latest). */
export async function pushBusyboxAs(root: string, remote: string): Promise<void> {
  assert.equal((await strata(['tag', 'busybox', `${remote}:1`], { root })).code, 0)
  const pushed = await strata(['push', `${remote}:1`], { root })
  assert.equal(pushed.code, 0, pushed.stderr)
  assert.equal((await strata(['rmi', `${remote}:1`], { root })).code, 0)
}

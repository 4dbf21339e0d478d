/**
 * The CNCF distribution registry (Debian's docker-registry 2.8) for tests
 * and benchmarks: started on 127.0.0.1 on a free port with its storage in
 * a given directory and stopped by its PID when the test ends; a loopback
 * proxy that corrupts one blob; skopeo pushes; raw manifest reads.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, request as httpRequest, type Server } from 'node:http'
import { writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { MediaTypes } from '../../src/transport/index.js'
import { run } from './peers.js'

export const REGISTRY = '/usr/bin/docker-registry'
export const SKOPEO = '/usr/bin/skopeo'

/** A free TCP port on 127.0.0.1 (bound and released; the registry binds it a moment later). */
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** Starts docker-registry on 127.0.0.1 with storage under `dir`; stopped by PID when `t` ends. */
export async function startRegistry(t: TestContext, dir: string, extraConfig: string[] = []): Promise<string> {
  const port = await freePort()
  const config = join(dir, 'registry.yml')
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log: { level: error, accesslog: { disabled: true } }',
      `storage: { filesystem: { rootdirectory: ${join(dir, 'data')} } }`,
      `http: { addr: "127.0.0.1:${port}" }`,
      ...extraConfig,
      '',
    ].join('\n'),
  )
  const child: ChildProcess = spawn(REGISTRY, ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()))
  let exited: string | undefined
  child.on('exit', (code, signal) => (exited = `exit code ${code} signal ${signal}`))
  t.after(async () => {
    if (exited !== undefined || child.pid === undefined) return
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    process.kill(child.pid, 'SIGTERM')
    const timer = setTimeout(() => {
      if (exited === undefined) process.kill(child.pid!, 'SIGKILL')
    }, 5000)
    await gone
    clearTimeout(timer)
  })
  const host = `127.0.0.1:${port}`
  const deadline = Date.now() + 20_000
  for (;;) {
    if (exited !== undefined) throw new Error(`docker-registry exited (${exited}) before answering: ${stderr}`)
    try {
      const res = await fetch(`http://${host}/v2/`)
      await res.arrayBuffer()
      // 401: up, with auth configured.
      if (res.status === 200 || res.status === 401) return host
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`docker-registry did not answer GET /v2/ on ${host} within 20 s: ${stderr}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/**
 * A loopback HTTP proxy in front of `upstream` that serves blob `corrupt`
 * with the byte at `offset` changed (same length), and answers the paths
 * of `rewrite` with what upstream answers for others (a manifest served
 * under a digest it does not hash to). Stopped when `t` ends.
 */
export async function startCorruptingProxy(
  t: TestContext,
  upstream: string,
  corrupt: { digest: string; offset: number },
  rewrite: Record<string, string> = {},
): Promise<string> {
  const [uhost, uport] = upstream.split(':')
  const server: Server = createServer((req, res) => {
    const path = rewrite[req.url ?? ''] ?? req.url
    const up = httpRequest({ host: uhost, port: Number(uport), method: req.method, path, headers: req.headers }, (ures) => {
      const target = req.method === 'GET' && req.url === `/v2/test/img/blobs/${corrupt.digest}` && ures.statusCode === 200
      if (!target) {
        res.writeHead(ures.statusCode ?? 502, ures.headers)
        ures.pipe(res)
        return
      }
      const chunks: Buffer[] = []
      ures.on('data', (c: Buffer) => chunks.push(c))
      ures.on('end', () => {
        const body = Buffer.concat(chunks)
        body[corrupt.offset] = body[corrupt.offset]! ^ 0xff
        res.writeHead(200, ures.headers)
        res.end(body)
      })
    })
    up.on('error', (e) => {
      res.writeHead(502)
      res.end(String(e))
    })
    req.pipe(up)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** skopeo copy of a docker-archive into the registry (layers gzip'd by skopeo). */
export async function push(archive: string, dest: string, tmp: string, creds?: string): Promise<void> {
  const auth = creds === undefined ? [] : [`--dest-creds=${creds}`]
  await run(SKOPEO, ['--insecure-policy', 'copy', '-q', '--dest-tls-verify=false', ...auth, `docker-archive:${archive}`, `docker://${dest}`], {
    env: { ...process.env, TMPDIR: tmp },
  })
}

export async function manifestOf(host: string, repo: string, ref: string): Promise<{ bytes: Buffer; doc: { layers: Array<{ digest: string; size: number }>; config: { digest: string } } }> {
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${ref}`, { headers: { accept: MediaTypes.dockerManifest } })
  assert.equal(res.status, 200)
  const bytes = Buffer.from(await res.arrayBuffer())
  return { bytes, doc: JSON.parse(bytes.toString()) }
}

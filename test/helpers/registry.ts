/**
 * The CNCF distribution registry (Debian's docker-registry 2.8) for tests
 * and benchmarks: started on 127.0.0.1 on a free port with its storage in
 * a given directory and stopped by its PID when the test ends; a loopback
 * proxy that corrupts one blob; a proxy that logs requests; a token
 * service; skopeo pushes; raw manifest reads.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, request as httpRequest, type Server } from 'node:http'
import { readFileSync, writeFileSync } from 'node:fs'
import { createPrivateKey, sign, X509Certificate } from 'node:crypto'
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

/** One request a logging proxy passed on. */
export interface ProxiedRequest {
  method: string
  path: string
  status: number
}

/**
 * A loopback HTTP proxy in front of `upstream` that passes every request
 * through (bodies streamed both ways) and logs method, path and status:
 * what a test counts uploads with. Stopped when `t` ends.
 */
export async function startLoggingProxy(t: TestContext, upstream: string): Promise<{ host: string; log: ProxiedRequest[] }> {
  const [uhost, uport] = upstream.split(':')
  const log: ProxiedRequest[] = []
  const server: Server = createServer((req, res) => {
    const up = httpRequest({ host: uhost, port: Number(uport), method: req.method, path: req.url, headers: req.headers }, (ures) => {
      log.push({ method: req.method ?? '', path: req.url ?? '', status: ures.statusCode ?? 0 })
      res.writeHead(ures.statusCode ?? 502, ures.headers)
      ures.pipe(res)
    })
    up.on('error', (e) => {
      res.writeHead(502)
      res.end(String(e))
    })
    req.pipe(up)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, log }
}

/**
 * A token service for the registry's `auth: token` (the distribution
 * token spec) that grants every scope asked for (each `scope` parameter)
 * to `user`/`password` given as basic credentials: an ES256 JWT signed by
 * a key whose self-signed certificate (made with openssl) is the
 * registry's rootcertbundle and rides in the x5c header. Records the
 * scopes of each token request granted, and counts the requests refused
 * for want of credentials. Stopped when `t` ends. `config` is the
 * registry config line that points the registry at it.
 */
export async function startGrantingTokenService(
  t: TestContext,
  dir: string,
  user: string,
  password: string,
): Promise<{ realm: string; certPath: string; requests: string[][]; refused: () => number; config: string }> {
  const keyPath = join(dir, 'token.key')
  const certPath = join(dir, 'token.crt')
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=strata-test-token'])
  const key = createPrivateKey(readFileSync(keyPath))
  const certDer = new X509Certificate(readFileSync(certPath)).raw
  const requests: string[][] = []
  let refused = 0
  const b64u = (b: Buffer | string): string => Buffer.from(b).toString('base64url')
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (req.headers.authorization !== `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`) {
      refused++
      res.writeHead(401, { 'content-type': 'application/json' })
      res.end('{"details":"bad or missing credentials"}')
      return
    }
    const scopes = url.searchParams.getAll('scope')
    requests.push(scopes)
    const access = scopes.map((scope) => {
      const parts = scope.split(':')
      return { type: parts[0], name: parts.slice(1, -1).join(':'), actions: parts.at(-1)!.split(',') }
    })
    const now = Math.floor(Date.now() / 1000)
    const header = { typ: 'JWT', alg: 'ES256', x5c: [certDer.toString('base64')] }
    const claims = { iss: 'strata-test-issuer', sub: user, aud: url.searchParams.get('service'), exp: now + 300, nbf: now - 10, iat: now, jti: String(Math.random()), access }
    const signing = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`
    const sig = sign('sha256', Buffer.from(signing), { key, dsaEncoding: 'ieee-p1363' })
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ token: `${signing}.${b64u(sig)}`, expires_in: 300 }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  const realm = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`
  const config = `auth: { token: { realm: "${realm}", service: strata-test, issuer: strata-test-issuer, rootcertbundle: ${certPath} } }`
  return { realm, certPath, requests, refused: () => refused, config }
}

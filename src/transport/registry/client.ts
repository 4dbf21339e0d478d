/**
 * An HTTP client for one registry's v2 API (the distribution spec), on
 * Node's http and https modules:
 *
 * - the scheme follows docker's rule: plain HTTP for a registry on the
 *   loopback interface (`localhost`, `127.0.0.0/8`, `::1`) or one named
 *   insecure by the caller, HTTPS for every other;
 * - Docker Hub (`docker.io`) is served at `registry-1.docker.io`;
 * - auth from the 401's `WWW-Authenticate` challenge: `Bearer` gets a
 *   token from the realm (anonymous, or with basic credentials from
 *   docker's config.json), cached per scope; `Basic` sends those
 *   credentials; a request is retried once with what the challenge asked;
 * - redirects (blob storage) are followed for requests without a body,
 *   up to MAX_REDIRECTS, the Authorization header dropped when a
 *   redirect leaves the registry's origin (as fetch does);
 * - an error response becomes a StrataError with the registry's own
 *   error code and message (`MANIFEST_UNKNOWN: manifest unknown`),
 *   NOT_FOUND for unknown names, manifests, blobs and denied access.
 *
 * Why not fetch: the first fetch of a process loads undici (a cold
 * `node` GETting a manifest from a loopback registry: 43 ms of CPU with
 * fetch, 13 ms with node:http), on the start of every pull and push; and
 * its bodies are web streams, turned into Node streams again here.
 * Connections are kept alive per client (an unused one does not hold the
 * process open). In the CLI's bundle, http and https load on first use
 * (scripts/bundle-cli.mjs), so a loopback pull never loads tls.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type ClientRequest, type RequestOptions } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { Readable } from 'node:stream'
import { StrataError } from '../../errors/index.js'
import type { Credentials, RegistryAuth } from './auth.js'

/** Docker Hub's API host (what `docker.io` resolves to). */
export const DOCKER_HUB_REGISTRY_HOST = 'registry-1.docker.io'

/** Largest manifest or token response read into memory (distribution's manifest limit is 4 MiB). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024

/** Redirects followed for one request (fetch's limit is 20; a blob store redirects once). */
export const MAX_REDIRECTS = 10

/** A response's header values by name (case-insensitive), as fetch's Headers.get. */
export interface ResponseHeaders {
  get(name: string): string | null
}

/** A registry's answer: status, headers and the body as a Node stream (empty for HEAD). */
export interface RegistryResponse {
  status: number
  statusText: string
  /** 2xx */
  ok: boolean
  /** The URL that answered (after redirects). */
  url: string
  headers: ResponseHeaders
  body: Readable
}

function headersOf(msg: IncomingMessage): ResponseHeaders {
  return {
    get(name: string): string | null {
      const v = msg.headers[name.toLowerCase()]
      if (v === undefined) return null
      return Array.isArray(v) ? v.join(', ') : v
    },
  }
}

/** Keep-alive agents, made on first use. */
interface Agents {
  http?: HttpAgent
  https?: HttpsAgent
}

/**
 * One HTTP exchange: resolves once the response's headers are in (its
 * body then streams), rejects when the connection fails before. A body
 * stream that fails destroys the request with its error.
 */
async function exchange(agents: Agents, url: URL, method: string, headers: Record<string, string>, body: Buffer | Readable | undefined): Promise<IncomingMessage> {
  let send: typeof httpRequest
  let agent: HttpAgent | HttpsAgent
  if (url.protocol === 'https:') {
    agents.https ??= new HttpsAgent({ keepAlive: true })
    send = httpsRequest as typeof httpRequest
    agent = agents.https
  } else if (url.protocol === 'http:') {
    agents.http ??= new HttpAgent({ keepAlive: true })
    send = httpRequest
    agent = agents.http
  } else {
    throw new StrataError('NOT_SUPPORTED', `strata speaks HTTP and HTTPS to registries, not "${url.protocol}" (${url.href})`)
  }
  const opts: RequestOptions = { method, headers: { ...headers }, agent }
  if (body instanceof Buffer) (opts.headers as Record<string, string>)['content-length'] = String(body.length)
  return new Promise<IncomingMessage>((resolve, reject) => {
    let req: ClientRequest
    try {
      req = send(url, opts, resolve)
    } catch (err) {
      reject(err)
      return
    }
    req.on('error', reject)
    if (body instanceof Readable) {
      body.on('error', (err) => req.destroy(err))
      body.pipe(req)
    } else {
      req.end(body)
    }
  })
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308
}

export interface RegistryClientOptions {
  /** Use plain HTTP even though the registry is not on loopback (docker's --insecure-registry). */
  insecure?: boolean
  /** Credentials for this registry (see readRegistryAuth). */
  auth?: RegistryAuth
  /** Sent as User-Agent. */
  userAgent?: string
}

/** Whether docker talks plain HTTP to `domain` without being told: the registry is on loopback. */
export function isLoopbackRegistry(domain: string): boolean {
  let host = domain
  if (host.startsWith('[')) host = host.slice(1, host.indexOf(']'))
  else if (host.includes(':') && host.indexOf(':') === host.lastIndexOf(':')) host = host.slice(0, host.indexOf(':'))
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}

/** A `WWW-Authenticate` challenge: its scheme (lower case) and parameters. */
export interface AuthChallenge {
  scheme: string
  params: Record<string, string>
}

/** Parses the first challenge of a `WWW-Authenticate` header (`Bearer realm="...",service="..."`). */
export function parseAuthChallenge(header: string): AuthChallenge | undefined {
  const m = /^\s*([A-Za-z][A-Za-z0-9_-]*)\s*(.*)$/.exec(header)
  if (m === null) return undefined
  const params: Record<string, string> = {}
  const re = /([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?\s*/g
  for (const p of m[2]!.matchAll(re)) params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '')
  return { scheme: m[1]!.toLowerCase(), params }
}

function basicHeader(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`
}

export interface RegistryRequest {
  method?: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'
  /** Accept header values. */
  accept?: readonly string[]
  /**
   * The token scope the request needs: `repository:<path>:pull`; several
   * separated by spaces (`repository:a:pull,push repository:b:pull`, a
   * cross-repository mount), each sent as its own `scope` parameter.
   */
  scope: string
  /**
   * A request body (push). A stream is sent chunked and cannot be sent
   * twice: a 401 to it is not retried, so a stream request should come
   * after one with the same scope that answered the challenge.
   */
  body?: Buffer | Readable
  /** Content-Type of the body. */
  contentType?: string
  /** What is being fetched, for messages ("manifest 1 of 127.0.0.1:5000/test/img"). */
  what: string
}

/** One registry (`docker.io`, `127.0.0.1:5000`, `ghcr.io`). */
export class RegistryClient {
  /** As in the reference: `docker.io`, `127.0.0.1:5000`. */
  readonly domain: string
  /** `http://127.0.0.1:5000`, `https://registry-1.docker.io`. */
  readonly baseUrl: string
  readonly #auth: RegistryAuth
  readonly #userAgent: string
  /** Authorization header values by scope, from earlier challenges. */
  readonly #authorization = new Map<string, string>()
  /** Kept-alive connections, for the registry and what it redirects to. */
  readonly #agents: Agents = {}

  constructor(domain: string, opts: RegistryClientOptions = {}) {
    this.domain = domain
    const host = domain === 'docker.io' ? DOCKER_HUB_REGISTRY_HOST : domain
    const scheme = opts.insecure === true || isLoopbackRegistry(domain) ? 'http' : 'https'
    this.baseUrl = `${scheme}://${host}`
    this.#auth = opts.auth ?? {}
    this.#userAgent = opts.userAgent ?? 'strata'
  }

  /**
   * Sends a request to `path` (`/v2/<name>/manifests/<ref>`), answering one
   * auth challenge. Resolves with a 2xx response; any other status is a
   * StrataError (its body read for the registry's error message).
   */
  async request(path: string, req: RegistryRequest): Promise<RegistryResponse> {
    // An absolute URL (an upload's Location) is taken as it is; credentials go only to the registry's origin.
    const absolute = /^https?:\/\//i.test(path)
    const url = absolute ? path : `${this.baseUrl}${path}`
    const sameOrigin = !absolute || new URL(path).origin === new URL(this.baseUrl).origin
    let res = await this.#send(url, req, sameOrigin ? this.#authorization.get(req.scope) : undefined)
    if (res.status === 401 && req.body instanceof Readable) {
      discardResponse(res)
      throw this.#denied(req, 'it answered 401 to a streamed upload, which cannot be sent again')
    }
    if (res.status === 401 && sameOrigin) {
      const header = res.headers.get('www-authenticate')
      discardResponse(res)
      const challenge = header === null ? undefined : parseAuthChallenge(header)
      if (challenge === undefined) throw this.#denied(req, 'it answered 401 without a WWW-Authenticate challenge')
      const authorization = await this.#answer(challenge, req)
      this.#authorization.set(req.scope, authorization)
      res = await this.#send(url, req, authorization)
    }
    if (res.ok) return res
    throw await this.#errorFor(res, req)
  }

  async #send(url: string, req: RegistryRequest, authorization: string | undefined): Promise<RegistryResponse> {
    const headers: Record<string, string> = { 'user-agent': this.#userAgent }
    if (req.accept !== undefined) headers.accept = req.accept.join(', ')
    if (req.contentType !== undefined) headers['content-type'] = req.contentType
    const method = req.method ?? 'GET'
    let at = new URL(url)
    const origin = at.origin
    for (let redirects = 0; ; redirects++) {
      // As fetch: credentials go to the registry's origin only, also along redirects.
      if (authorization !== undefined && at.origin === origin) headers.authorization = authorization
      else delete headers.authorization
      let msg: IncomingMessage
      try {
        msg = await exchange(this.#agents, at, method, headers, req.body)
      } catch (err) {
        if (err instanceof StrataError) throw err
        const e = err as { code?: unknown; message?: unknown }
        const why = typeof e.code === 'string' ? e.code : String(e.message)
        throw new StrataError('SYSCALL', `Cannot reach registry ${this.domain} at ${at.href} for the ${req.what}: ${why}`, { cause: err, details: { url: at.href } })
      }
      const status = msg.statusCode ?? 0
      const location = msg.headers.location
      // A body (an upload) cannot be sent again: its redirect is the answer.
      if (isRedirect(status) && location !== undefined && req.body === undefined && redirects < MAX_REDIRECTS) {
        msg.resume()
        try {
          at = new URL(location, at)
        } catch (err) {
          throw new StrataError('CORRUPT', `Registry ${this.domain} redirected the ${req.what} to "${location}", which is not a URL`, { cause: err })
        }
        continue
      }
      return { status, statusText: msg.statusMessage ?? '', ok: status >= 200 && status < 300, url: at.href, headers: headersOf(msg), body: msg }
    }
  }

  /** The Authorization header value a challenge asks for. */
  async #answer(challenge: AuthChallenge, req: RegistryRequest): Promise<string> {
    const creds = this.#auth.credentials
    if (challenge.scheme === 'basic') {
      if (creds === undefined) throw this.#denied(req, 'it asks for basic auth and there are no credentials for it in docker\'s config.json')
      return basicHeader(creds)
    }
    if (challenge.scheme !== 'bearer') {
      throw new StrataError('NOT_SUPPORTED', `Registry ${this.domain} asks for "${challenge.scheme}" authentication for the ${req.what}; strata supports Bearer and Basic`)
    }
    const realm = challenge.params.realm
    if (realm === undefined || realm === '') throw this.#denied(req, 'its Bearer challenge names no realm')
    let tokenUrl: URL
    try {
      tokenUrl = new URL(realm)
    } catch (err) {
      throw new StrataError('CORRUPT', `Registry ${this.domain}'s token realm "${realm}" is not a URL`, { cause: err })
    }
    if (challenge.params.service !== undefined) tokenUrl.searchParams.set('service', challenge.params.service)
    for (const scope of req.scope.split(' ')) if (scope !== '') tokenUrl.searchParams.append('scope', scope)
    const headers: Record<string, string> = { 'user-agent': this.#userAgent }
    if (creds !== undefined) headers.authorization = basicHeader(creds)
    let res: RegistryResponse
    try {
      const msg = await exchange(this.#agents, tokenUrl, 'GET', headers, undefined)
      const status = msg.statusCode ?? 0
      res = { status, statusText: msg.statusMessage ?? '', ok: status >= 200 && status < 300, url: tokenUrl.href, headers: headersOf(msg), body: msg }
    } catch (err) {
      if (err instanceof StrataError) throw err
      const e = err as { code?: unknown; message?: unknown }
      throw new StrataError('SYSCALL', `Cannot reach the token service of registry ${this.domain} at ${tokenUrl.origin}: ${typeof e.code === 'string' ? e.code : String(e.message)}`, { cause: err })
    }
    if (!res.ok) {
      discardResponse(res)
      throw this.#denied(req, `its token service ${tokenUrl.origin}${tokenUrl.pathname} answered ${res.status}${creds === undefined ? '' : ' to the credentials from docker\'s config.json'}`)
    }
    const body = await readResponse(res, MAX_MANIFEST_BYTES, `token from ${tokenUrl.origin}`)
    let doc: { token?: unknown; access_token?: unknown }
    try {
      doc = JSON.parse(body.toString('utf8')) as typeof doc
    } catch (err) {
      throw new StrataError('CORRUPT', `The token service of registry ${this.domain} answered with something that is not JSON`, { cause: err })
    }
    const token = typeof doc.token === 'string' && doc.token !== '' ? doc.token : doc.access_token
    if (typeof token !== 'string' || token === '') throw new StrataError('CORRUPT', `The token service of registry ${this.domain} answered without a token`)
    return `Bearer ${token}`
  }

  #denied(req: RegistryRequest, why: string): StrataError {
    const helper = this.#auth.helper
    return new StrataError('NOT_FOUND', `Access to the ${req.what} was denied by registry ${this.domain}: ${why}`, {
      ...(helper === undefined
        ? { hint: `Log in with \`docker login ${this.domain}\` (strata reads the credentials it stores in ~/.docker/config.json)` }
        : { hint: `docker's config.json names the credential helper "docker-credential-${helper}" for it, which strata does not run yet (NOT_SUPPORTED): store the credentials in "auths" instead` }),
      details: { registry: this.domain, scope: req.scope },
    })
  }

  async #errorFor(res: RegistryResponse, req: RegistryRequest): Promise<StrataError> {
    let detail = ''
    let codes: string[] = []
    try {
      const body = await readResponse(res, 64 * 1024, 'error response')
      const doc = JSON.parse(body.toString('utf8')) as { errors?: Array<{ code?: unknown; message?: unknown }> }
      if (Array.isArray(doc.errors)) {
        codes = doc.errors.map((e) => String(e.code ?? ''))
        detail = doc.errors.map((e) => `${String(e.code ?? 'UNKNOWN')}: ${String(e.message ?? '')}`).join('; ')
      }
    } catch {
      // not a registry error document: the status says it
    }
    const notFound = res.status === 404 || res.status === 403 || codes.some((c) => /^(MANIFEST_UNKNOWN|NAME_UNKNOWN|BLOB_UNKNOWN|DENIED|UNAUTHORIZED)$/.test(c))
    const what = `Registry ${this.domain} answered ${res.status} ${res.statusText} for the ${req.what}`
    return new StrataError(notFound ? 'NOT_FOUND' : 'CORRUPT', detail === '' ? what : `${what}: ${detail}`, { details: { status: res.status, url: res.url } })
  }
}

/** A response's body as a Node stream. */
export function responseStream(res: RegistryResponse): Readable {
  return res.body
}

/** All of a response's body, refusing (CORRUPT) more than `limit` bytes. */
export async function readResponse(res: RegistryResponse, limit: number, what: string): Promise<Buffer> {
  const length = Number(res.headers.get('content-length') ?? NaN)
  if (Number.isFinite(length) && length > limit) {
    discardResponse(res)
    throw new StrataError('CORRUPT', `The ${what} is ${length} bytes, more than the ${limit} strata reads for it`)
  }
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length
      if (size > limit) throw new StrataError('CORRUPT', `The ${what} is more than the ${limit} bytes strata reads for it`)
      chunks.push(chunk)
    }
  } finally {
    res.body.destroy()
  }
  return Buffer.concat(chunks, size)
}

/** Answers whose body goes unread: a small one is drained (its connection kept for the next request), a large one closed. */
export function discardResponse(res: RegistryResponse): void {
  const length = Number(res.headers.get('content-length') ?? NaN)
  if (Number.isFinite(length) && length <= 64 * 1024) {
    res.body.on('error', () => {})
    res.body.resume()
  } else {
    res.body.destroy()
  }
}

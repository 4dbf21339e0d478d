/**
 * `docker login` / `docker logout` without a daemon: credentials checked
 * against the registry (GET /v2/, answering its basic or token challenge,
 * as dockerd's auth service does), then stored in docker's client config
 * the way the docker CLI stores them without a credential helper:
 *
 *   {"auths":{"127.0.0.1:5000":{"auth":"<base64 user:password>"}}}
 *
 * under the key the CLI uses (the registry host; Docker Hub's
 * `https://index.docker.io/v1/`), every other key of the file kept, the
 * file replaced atomically with mode 0600 in a 0700 directory. pull and
 * push read it back (auth.ts).
 */
import { mkdir, readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { StrataError, isErrno } from '../../errors/index.js'
import { atomicWriteFile } from '../../fs/index.js'
import { DOCKER_HUB_AUTH_KEY, dockerConfigPath, type Credentials } from './auth.js'
import { RegistryClient, discardResponse } from './client.js'

export interface LoginOptions {
  /** docker's client config to write; default `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`. */
  dockerConfig?: string
  /** Plain HTTP to a registry that is not on loopback (docker's --insecure-registry). */
  insecure?: boolean
}

/** The key docker's CLI files a registry's credentials under. */
export function authKey(domain: string): string {
  return domain === 'docker.io' || domain === 'index.docker.io' ? DOCKER_HUB_AUTH_KEY : domain
}

async function readConfig(path: string): Promise<Record<string, unknown>> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return {}
    throw err
  }
  try {
    const doc = JSON.parse(text) as unknown
    if (typeof doc === 'object' && doc !== null && !Array.isArray(doc)) return doc as Record<string, unknown>
  } catch {
    // refused below
  }
  throw new StrataError('INVALID_ARGUMENT', `Docker client config ${path} is not a JSON object; strata will not overwrite it`)
}

async function writeConfig(path: string, doc: Record<string, unknown>): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  await atomicWriteFile(path, `${JSON.stringify(doc, null, '\t')}\n`, 0o600)
}

/**
 * Checks `credentials` with registry `domain` and stores them; returns the
 * config file written. UNAUTHORIZED-like failures come back as the
 * registry client's error ("denied by registry ...").
 */
export async function login(domain: string, credentials: Credentials, opts: LoginOptions = {}): Promise<string> {
  if (credentials.username === '') throw new StrataError('INVALID_ARGUMENT', 'Username is required')
  if (credentials.password === '') throw new StrataError('INVALID_ARGUMENT', 'Password is required')
  const client = new RegistryClient(domain, { auth: { credentials }, ...(opts.insecure === true ? { insecure: true } : {}) })
  try {
    const res = await client.request('/v2/', { scope: '', what: 'login' })
    discardResponse(res)
  } catch (err) {
    // dockerd's words for a refused login; other failures (unreachable) as they are.
    const status = /answered (\d{3} [A-Za-z]+(?: [A-Z][a-z]+)*)/.exec((err as Error).message)?.[1]
    if (status === undefined) throw err
    throw new StrataError('INVALID_ARGUMENT', `login attempt to ${client.baseUrl}/v2/ failed with status: ${status.trim()}`, { cause: err })
  }
  const path = opts.dockerConfig ?? dockerConfigPath()
  const doc = await readConfig(path)
  const auths = typeof doc.auths === 'object' && doc.auths !== null && !Array.isArray(doc.auths) ? (doc.auths as Record<string, unknown>) : {}
  auths[authKey(domain)] = { auth: Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64') }
  doc.auths = auths
  await writeConfig(path, doc)
  return path
}

/** Removes the stored credentials of `domain`; false when there were none (docker prints "Not logged in to X"). */
export async function logout(domain: string, opts: Pick<LoginOptions, 'dockerConfig'> = {}): Promise<boolean> {
  const path = opts.dockerConfig ?? dockerConfigPath()
  const doc = await readConfig(path)
  const auths = doc.auths as Record<string, unknown> | undefined
  const key = authKey(domain)
  if (typeof auths !== 'object' || auths === null || !Object.hasOwn(auths, key)) return false
  delete auths[key]
  await writeConfig(path, doc)
  return true
}

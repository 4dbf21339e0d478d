/**
 * Credentials for a registry, read from docker's client config
 * (`$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`), the
 * file `docker login` writes:
 *
 *   {"auths":{"127.0.0.1:5000":{"auth":"<base64 user:password>"},
 *             "https://index.docker.io/v1/":{"auth":"..."}}}
 *
 * Keys are matched as the docker CLI matches them: the registry host
 * itself, or the host of a key written as a URL (`https://host/v1/`);
 * Docker Hub's key is `https://index.docker.io/v1/`. Credential helpers
 * (`credsStore`, `credHelpers`) run external programs: not supported yet,
 * and said so when a registry then refuses the anonymous request.
 */
import { readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { StrataError, isErrno } from '../../errors/index.js'

export interface Credentials {
  username: string
  password: string
}

/** Where credentials for a registry come from, when they do. */
export interface RegistryAuth {
  credentials?: Credentials
  /** Set when the config names a credential helper for this registry (which strata cannot run yet). */
  helper?: string
}

/** Docker Hub's key in config.json (registry.IndexServer). */
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/'

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.DOCKER_CONFIG !== undefined && env.DOCKER_CONFIG !== '' ? env.DOCKER_CONFIG : join(homedir(), '.docker')
  return join(dir, 'config.json')
}

/** The host a config.json key names (`https://host:5000/v1/` → `host:5000`). */
function keyHost(key: string): string {
  const k = key.replace(/^https?:\/\//, '')
  const slash = k.indexOf('/')
  return slash === -1 ? k : k.slice(0, slash)
}

/**
 * The credentials config.json holds for registry `domain` (`docker.io`,
 * `127.0.0.1:5000`); `{}` when the file or an entry is missing. A file
 * that is not JSON, or an `auth` that is not base64 `user:password`, is
 * INVALID_ARGUMENT naming the file.
 */
export async function readRegistryAuth(domain: string, configPath: string = dockerConfigPath()): Promise<RegistryAuth> {
  let text: string
  try {
    text = await readFile(configPath, 'utf8')
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return {}
    throw err
  }
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (err) {
    throw new StrataError('INVALID_ARGUMENT', `Docker client config ${configPath} is not valid JSON: ${(err as Error).message}`, { cause: err })
  }
  if (typeof doc !== 'object' || doc === null) return {}
  const config = doc as { auths?: unknown; credsStore?: unknown; credHelpers?: unknown }
  const wanted = domain === 'docker.io' ? 'index.docker.io' : domain
  const result: RegistryAuth = {}
  const helpers = config.credHelpers
  if (typeof helpers === 'object' && helpers !== null) {
    const h = (helpers as Record<string, unknown>)[domain] ?? (helpers as Record<string, unknown>)[wanted]
    if (typeof h === 'string') result.helper = h
  }
  if (result.helper === undefined && typeof config.credsStore === 'string' && config.credsStore !== '') result.helper = config.credsStore
  const auths = config.auths
  if (typeof auths !== 'object' || auths === null) return result
  for (const [key, value] of Object.entries(auths as Record<string, unknown>)) {
    const host = keyHost(key)
    if (host !== wanted && !(domain === 'docker.io' && key === DOCKER_HUB_AUTH_KEY)) continue
    if (typeof value !== 'object' || value === null) continue
    const entry = value as { auth?: unknown; username?: unknown; password?: unknown }
    if (typeof entry.auth === 'string' && entry.auth !== '') {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      if (colon <= 0) throw new StrataError('INVALID_ARGUMENT', `Docker client config ${configPath}: the "auth" of "${key}" is not base64 of user:password`)
      result.credentials = { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
      return result
    }
    if (typeof entry.username === 'string' && typeof entry.password === 'string') {
      result.credentials = { username: entry.username, password: entry.password }
      return result
    }
  }
  return result
}

/**
 * A container's Config from its image's, as dockerd 20.10's daemon/create.go
 * merges them (daemon.merge): the caller's values win, the image fills
 * what the caller left empty. Env: the caller's entries as given, then the
 * image's whose key the caller did not set (the image's alone, null
 * included, when the caller gave none); a given Cmd keeps the
 * image's Entrypoint, a given Entrypoint drops the image's Cmd unless a Cmd
 * is given too; Labels merge with the caller winning.
 *
 * Also the field order Go's json.Marshal gives container.Config, so a
 * committed image's config reads like dockerd's.
 */
import type { ContainerConfig } from '../image/index.js'
import { StrataError } from '../errors/index.js'
import type { CreateContainerOptions } from './types.js'

function envKey(kv: string): string {
  const i = kv.indexOf('=')
  return i < 0 ? kv : kv.slice(0, i)
}

/** daemon.merge's Env: `user` as given, then each `image` entry whose key `user` lacks; `image` itself when `user` is empty. */
export function createEnv(image: readonly string[] | null | undefined, user: readonly string[]): string[] | null {
  if (user.length === 0) return image === undefined || image === null ? null : [...image]
  const keys = new Set(user.map(envKey))
  return [...user, ...(image ?? []).filter((kv) => !keys.has(envKey(kv)))]
}

/** `base` with `over` applied by key: keys already in base keep their place. */
export function mergeEnv(base: readonly string[], over: readonly string[]): string[] {
  const out = [...base]
  for (const kv of over) {
    const i = out.findIndex((e) => envKey(e) === envKey(kv))
    if (i >= 0) out[i] = kv
    else out.push(kv)
  }
  return out
}

export function mergeContainerConfig(image: ContainerConfig | null | undefined, opts: CreateContainerOptions, imageRef: string, hostname: string): ContainerConfig {
  const img = image ?? {}
  for (const kv of opts.env ?? []) {
    if (kv === '' || kv.startsWith('=')) throw new StrataError('INVALID_ARGUMENT', `Invalid environment variable "${kv}"`)
  }
  let entrypoint = img.Entrypoint ?? null
  let cmd = img.Cmd ?? null
  if (opts.entrypoint !== undefined) {
    entrypoint = opts.entrypoint.length === 0 ? null : [...opts.entrypoint]
    // daemon.merge takes the image's Cmd only when neither Cmd nor Entrypoint was given.
    cmd = null
  }
  if (opts.cmd !== undefined && opts.cmd.length > 0) cmd = [...opts.cmd]
  const labels = { ...(img.Labels ?? {}), ...(opts.labels ?? {}) }
  const config: ContainerConfig = {
    ...img,
    Hostname: hostname,
    Domainname: img.Domainname ?? '',
    User: opts.user ?? img.User ?? '',
    // docker's CLI: -d attaches nothing; -i opens stdin, attached (and closed after that attach) unless -d.
    AttachStdin: opts.interactive === true && opts.detached !== true,
    AttachStdout: opts.detached !== true,
    AttachStderr: opts.detached !== true,
    Tty: opts.tty === true,
    OpenStdin: opts.interactive === true,
    StdinOnce: opts.interactive === true && opts.detached !== true,
    Env: createEnv(img.Env, opts.env ?? []),
    Cmd: cmd,
    Image: imageRef,
    Volumes: img.Volumes ?? null,
    WorkingDir: opts.workingDir ?? img.WorkingDir ?? '',
    Entrypoint: entrypoint,
    OnBuild: img.OnBuild ?? null,
    Labels: labels,
  }
  return orderContainerConfig(config)
}

/** Entrypoint + Cmd, split into dockerd's Path and Args; INVALID_ARGUMENT when there is no command at all. */
export function commandOf(config: ContainerConfig): { path: string; args: string[] } {
  const argv = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])]
  if (argv.length === 0) throw new StrataError('INVALID_ARGUMENT', 'No command specified: the image has no Cmd or Entrypoint and none was given')
  return { path: argv[0]!, args: argv.slice(1) }
}

/** container.Config's fields in Go's declaration order; omitempty fields only when set; unknown fields kept at the end. */
const FIELD_ORDER: Array<[string, boolean]> = [
  ['Hostname', false],
  ['Domainname', false],
  ['User', false],
  ['AttachStdin', false],
  ['AttachStdout', false],
  ['AttachStderr', false],
  ['ExposedPorts', true],
  ['Tty', false],
  ['OpenStdin', false],
  ['StdinOnce', false],
  ['Env', false],
  ['Cmd', false],
  ['Healthcheck', true],
  ['ArgsEscaped', true],
  ['Image', false],
  ['Volumes', false],
  ['WorkingDir', false],
  ['Entrypoint', false],
  ['NetworkDisabled', true],
  ['MacAddress', true],
  ['OnBuild', false],
  ['Labels', false],
  ['StopSignal', true],
  ['StopTimeout', true],
  ['Shell', true],
]

const DEFAULTS: Record<string, unknown> = {
  Hostname: '',
  Domainname: '',
  User: '',
  AttachStdin: false,
  AttachStdout: false,
  AttachStderr: false,
  Tty: false,
  OpenStdin: false,
  StdinOnce: false,
  Env: null,
  Cmd: null,
  Image: '',
  Volumes: null,
  WorkingDir: '',
  Entrypoint: null,
  OnBuild: null,
  Labels: null,
}

function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === '' || v === 0) return true
  if (Array.isArray(v)) return v.length === 0
  if (typeof v === 'object') return Object.keys(v as object).length === 0
  return false
}

export function orderContainerConfig(config: ContainerConfig): ContainerConfig {
  const out: Record<string, unknown> = {}
  for (const [key, omitEmpty] of FIELD_ORDER) {
    const v = config[key]
    if (omitEmpty) {
      if (!isEmpty(v)) out[key] = v
    } else {
      out[key] = v === undefined ? DEFAULTS[key] : v
    }
  }
  for (const [k, v] of Object.entries(config)) if (!(k in out) && !FIELD_ORDER.some(([f]) => f === k)) out[k] = v
  return out as ContainerConfig
}

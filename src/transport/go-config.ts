/**
 * Docker's image structs as Go's encoding/json writes them, for the bytes
 * dockerd derives from an image config rather than copies: the legacy v1
 * JSON and v1 IDs `docker save` writes (docker-archive/v1.ts), and the
 * config `docker import` makes (import.ts).
 *
 * Go decodes a config into structs and encodes the structs back, so what
 * comes out has the structs' field order, their `omitempty` rules, zero
 * values for fields the input lacked, unknown fields dropped, and Go's
 * string escaping (<, >, & as \u003c...). Decoding matches keys to fields
 * exactly first and then case-insensitively, the last key winning, as Go's
 * decoder does. Field lists are those of moby 20.10's
 * api/types/container.Config, HealthConfig and image.V1Image.
 */
import { GO_ZERO_TIME, goJsonString, goRfc3339Nano, goStringCompare } from '../fs/index.js'

/** A JSON value in Go's encoding, keys in the order given (a struct or a RawMessage), strings escaped as Go does. */
export function goJson(value: unknown): string {
  if (value === null || value === undefined) return 'null'
  if (typeof value === 'string') return goJsonString(value)
  if (typeof value === 'number' || typeof value === 'boolean') return JSON.stringify(value)
  if (Array.isArray(value)) return `[${value.map(goJson).join(',')}]`
  if (typeof value === 'object') {
    return `{${Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${goJsonString(k)}:${goJson(v)}`)
      .join(',')}}`
  }
  return 'null'
}

/** An object as a Go map: keys sorted bytewise. */
export function goJsonSortedObject(entries: Record<string, string>): string {
  const keys = Object.keys(entries).sort(goStringCompare)
  return `{${keys.map((k) => `${goJsonString(k)}:${entries[k]}`).join(',')}}`
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Go's field matching: the value each field ends up with (exact key first, else case-insensitive; last key wins). */
function decodeFields(obj: Record<string, unknown>, fields: readonly string[]): Map<string, unknown> {
  const out = new Map<string, unknown>()
  const lower = new Map(fields.map((f) => [f.toLowerCase(), f]))
  for (const [key, value] of Object.entries(obj)) {
    const field = fields.includes(key) ? key : lower.get(key.toLowerCase())
    if (field !== undefined) out.set(field, value)
  }
  return out
}

type Kind =
  | 'string'
  | 'bool'
  | 'int'
  /** []string: null when absent */
  | 'strings'
  /** strslice.StrSlice: a JSON string decodes as a one-element list */
  | 'strslice'
  /** map[string]struct{}: keys sorted, values {} */
  | 'set'
  /** map[string]string: keys sorted */
  | 'map'
  | 'health'

interface Field {
  key: string
  kind: Kind
  /** `json:",omitempty"`: zero values are left out. */
  omitempty?: boolean
  /** A pointer field (*int): omitempty leaves out only a missing value, not 0. */
  pointer?: boolean
}

const CONTAINER_CONFIG: readonly Field[] = [
  { key: 'Hostname', kind: 'string' },
  { key: 'Domainname', kind: 'string' },
  { key: 'User', kind: 'string' },
  { key: 'AttachStdin', kind: 'bool' },
  { key: 'AttachStdout', kind: 'bool' },
  { key: 'AttachStderr', kind: 'bool' },
  { key: 'ExposedPorts', kind: 'set', omitempty: true },
  { key: 'Tty', kind: 'bool' },
  { key: 'OpenStdin', kind: 'bool' },
  { key: 'StdinOnce', kind: 'bool' },
  { key: 'Env', kind: 'strings' },
  { key: 'Cmd', kind: 'strslice' },
  { key: 'Healthcheck', kind: 'health', omitempty: true, pointer: true },
  { key: 'ArgsEscaped', kind: 'bool', omitempty: true },
  { key: 'Image', kind: 'string' },
  { key: 'Volumes', kind: 'set' },
  { key: 'WorkingDir', kind: 'string' },
  { key: 'Entrypoint', kind: 'strslice' },
  { key: 'NetworkDisabled', kind: 'bool', omitempty: true },
  { key: 'MacAddress', kind: 'string', omitempty: true },
  { key: 'OnBuild', kind: 'strings' },
  { key: 'Labels', kind: 'map' },
  { key: 'StopSignal', kind: 'string', omitempty: true },
  { key: 'StopTimeout', kind: 'int', omitempty: true, pointer: true },
  { key: 'Shell', kind: 'strslice', omitempty: true },
]

const HEALTH_CONFIG: readonly Field[] = [
  { key: 'Test', kind: 'strings', omitempty: true },
  { key: 'Interval', kind: 'int', omitempty: true },
  { key: 'Timeout', kind: 'int', omitempty: true },
  { key: 'StartPeriod', kind: 'int', omitempty: true },
  { key: 'Retries', kind: 'int', omitempty: true },
]

/** The encoding of one field, or undefined to leave it out. */
function encodeField(field: Field, present: boolean, value: unknown): string | undefined {
  const absent = !present || value === null || value === undefined
  switch (field.kind) {
    case 'string': {
      const s = typeof value === 'string' ? value : ''
      return field.omitempty === true && s === '' ? undefined : goJsonString(s)
    }
    case 'bool': {
      const b = value === true
      return field.omitempty === true && !b ? undefined : String(b)
    }
    case 'int': {
      if (field.pointer === true && absent) return undefined
      const n = typeof value === 'number' ? value : 0
      return field.omitempty === true && field.pointer !== true && n === 0 ? undefined : JSON.stringify(n)
    }
    case 'strings':
    case 'strslice': {
      let list: unknown[] | undefined
      if (Array.isArray(value)) list = value
      else if (field.kind === 'strslice' && typeof value === 'string') list = [value]
      if (list === undefined) return field.omitempty === true ? undefined : 'null'
      if (field.omitempty === true && list.length === 0) return undefined
      return goJson(list)
    }
    case 'set':
    case 'map': {
      if (!isObject(value)) return field.omitempty === true ? undefined : 'null'
      if (field.omitempty === true && Object.keys(value).length === 0) return undefined
      const entries: Record<string, string> = {}
      for (const [k, v] of Object.entries(value)) entries[k] = field.kind === 'set' ? '{}' : goJsonString(typeof v === 'string' ? v : '')
      return goJsonSortedObject(entries)
    }
    case 'health':
      if (!isObject(value)) return undefined
      return encodeStruct(value, HEALTH_CONFIG)
  }
}

function encodeStruct(obj: Record<string, unknown>, fields: readonly Field[]): string {
  const values = decodeFields(obj, fields.map((f) => f.key))
  const parts: string[] = []
  for (const field of fields) {
    const enc = encodeField(field, values.has(field.key), values.get(field.key))
    if (enc !== undefined) parts.push(`${goJsonString(field.key)}:${enc}`)
  }
  return `{${parts.join(',')}}`
}

/**
 * container.Config as dockerd writes it (`config`, `container_config`):
 * every field in struct order, zero values included except the omitempty
 * ones. A non-object (missing, null) gives the zero Config.
 * @example marshalContainerConfig({}) // '{"Hostname":"","Domainname":"",...,"Labels":null}'
 */
export function marshalContainerConfig(value: unknown): string {
  return encodeStruct(isObject(value) ? value : {}, CONTAINER_CONFIG)
}

/** Go's RFC3339Nano of a parsed time: the fraction's trailing zeros dropped; the zero time when missing. */
function goTime(value: unknown): string {
  if (typeof value !== 'string') return GO_ZERO_TIME
  return goRfc3339Nano(value) ?? value
}

/** The fields of moby's image.V1Image, in struct order. */
export const V1_IMAGE_FIELDS = [
  'id',
  'parent',
  'comment',
  'created',
  'container',
  'container_config',
  'docker_version',
  'author',
  'config',
  'architecture',
  'variant',
  'os',
  'Size',
] as const

export type V1ImageField = (typeof V1_IMAGE_FIELDS)[number]

/**
 * The V1Image part of an image config (what Go decodes into image.V1Image),
 * as [field, encoded value] pairs in struct order, omitempty applied.
 * `overrides` replace decoded values (an already-encoded JSON value, or
 * null to leave the field out).
 */
export function v1ImageFields(config: Record<string, unknown>, overrides: Partial<Record<V1ImageField, string | null>> = {}): Array<[V1ImageField, string]> {
  const values = decodeFields(config, V1_IMAGE_FIELDS)
  const out: Array<[V1ImageField, string]> = []
  for (const field of V1_IMAGE_FIELDS) {
    if (field in overrides) {
      const o = overrides[field]
      if (o !== null && o !== undefined) out.push([field, o])
      continue
    }
    const v = values.get(field)
    let enc: string | undefined
    switch (field) {
      case 'created':
        enc = goJsonString(goTime(v))
        break
      case 'container_config':
        enc = marshalContainerConfig(v)
        break
      case 'config':
        enc = isObject(v) ? marshalContainerConfig(v) : undefined
        break
      case 'Size':
        enc = typeof v === 'number' && v !== 0 ? JSON.stringify(v) : undefined
        break
      default:
        enc = typeof v === 'string' && v !== '' ? goJsonString(v) : undefined
    }
    if (enc !== undefined) out.push([field, enc])
  }
  return out
}

/** Pairs of [key, encoded value] as a JSON object in the given order. */
export function objectFromPairs(pairs: ReadonlyArray<readonly [string, string]>): string {
  return `{${pairs.map(([k, v]) => `${goJsonString(k)}:${v}`).join(',')}}`
}

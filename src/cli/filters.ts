/**
 * `--filter KEY=VALUE` as docker's CLI reads it (opts.FilterOpt, filters.ParseFlag):
 * the key lower-cased and trimmed, the value trimmed, a flag without `=`
 * refused as pflag refuses a bad value (exit 125). What the keys mean is
 * the library's business (listImages, listContainers).
 */
import { StrataError } from '../errors/index.js'
import type { FlagSpec } from './args.js'

/** The `-f, --filter` flag of ps and images. */
export const FILTER_FLAG = {
  type: 'string',
  short: 'f',
  multiple: true,
  check: (v: string) => (v === '' || v.includes('=') ? undefined : 'bad format of filter (expected name=value)'),
} as const satisfies FlagSpec

/** The --filter values by key, in the order given. */
export function parseFilterFlags(values: readonly string[] | undefined): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const arg of values ?? []) {
    if (arg === '') continue
    const eq = arg.indexOf('=')
    const key = arg.slice(0, eq).trim().toLowerCase()
    const value = arg.slice(eq + 1).trim()
    const list = out.get(key) ?? []
    if (!list.includes(value)) list.push(value)
    out.set(key, list)
  }
  return out
}

/** Refuses a key not in `accepted` with dockerd's words. */
export function checkFilterKeys(filters: ReadonlyMap<string, unknown>, accepted: readonly string[]): void {
  for (const key of filters.keys()) if (!accepted.includes(key)) throw new StrataError('INVALID_ARGUMENT', `Invalid filter '${key}'`)
}

/** A boolean filter as dockerd's GetBoolOrDefault reads it (true/1, false/0, any case); undefined when absent. */
export function boolFilterValue(filters: ReadonlyMap<string, string[]>, key: string): boolean | undefined {
  const values = filters.get(key)
  if (values === undefined || values.length === 0) return undefined
  const v = values[0]!.toLowerCase()
  if (values.length === 1 && (v === 'true' || v === '1')) return true
  if (values.length === 1 && (v === 'false' || v === '0')) return false
  throw new StrataError('INVALID_ARGUMENT', `Invalid filter '${key}=[${values.join(' ')}]'`)
}

/**
 * `strata layer ...`: the layer store by hand. ls, inspect, import (a tar
 * becomes a layer on an optional parent), export (the layer's tar, rebuilt
 * from tar-split and verified against its diffID) and rm.
 *
 * A layer imported here is referenced by nothing (no image, no child): it
 * stays until `strata layer rm` (or until an image that used it and is
 * deleted takes it along).
 */
import { parseDigest, type Digest } from '../digest/index.js'
import { StrataError } from '../errors/index.js'
import type { LayerInfo } from '../layer/index.js'
import type { Store } from '../store/index.js'
import { checkArgCount, parseFlags } from './args.js'
import { UnknownCommandError, UsageError } from './errors.js'
import type { GlobalOptions } from './global.js'
import { openInput, writeOutput } from './io.js'
import { humanSize, shortId, table, type CommandResult } from './output.js'
import { withStore } from './store.js'

export const LAYER_HELP = `Usage: strata layer COMMAND

Manage read-only layers (keyed by chainID).

Commands:
  ls [--no-trunc] [--format json]          List layers
  inspect CHAINID...                       Show a layer's metadata as JSON
  import [--parent CHAINID] FILE|-         Register a layer tar (plain, gzip or zstd); print its chainID
  export [-o FILE|-] CHAINID               Write the layer's tar, byte-identical to the one imported
  rm CHAINID...                            Delete layers nothing refers to
`

/** Each subcommand's help (its usage line is what a wrong argument count repeats). */
const HELPS = {
  ls: 'Usage: strata layer ls [--no-trunc] [--format json]\n\nList layers.\n',
  inspect: "Usage: strata layer inspect CHAINID...\n\nShow layers' metadata as JSON.\n",
  import: 'Usage: strata layer import [--parent CHAINID] FILE|-\n\nRegister a layer tar (plain, gzip or zstd) and print its chainID.\n',
  export: "Usage: strata layer export [-o FILE|-] CHAINID\n\nWrite a layer's tar, byte-identical to the one imported.\n",
  rm: 'Usage: strata layer rm CHAINID...\n\nDelete layers nothing refers to.\n',
}

export async function layerCommand(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const [verb, ...rest] = args
  switch (verb) {
    case 'ls':
    case 'list':
      return ls(rest, global)
    case 'inspect':
      return inspect(rest, global)
    case 'import':
      return importLayer(rest, global)
    case 'export':
      return exportLayer(rest, global)
    case 'rm':
      return rm(rest, global)
    case undefined:
    case '--help':
    case '-h':
      return LAYER_HELP
    default:
      throw new UnknownCommandError(verb, 'layer')
  }
}

/** A full chainID, a bare 64-hex, or a unique prefix of one. */
async function resolveChain(store: Store, arg: string): Promise<Digest> {
  const hex = arg.replace(/^sha256:/, '')
  if (/^[a-f0-9]{64}$/.test(hex)) return parseDigest(`sha256:${hex}`)
  if (!/^[a-f0-9]+$/.test(hex)) throw new UsageError(`"${arg}" is not a chainID`)
  const matches = (await store.layers.list()).filter((l) => l.chainId.slice(7).startsWith(hex))
  if (matches.length === 1) return matches[0]!.chainId
  if (matches.length === 0) throw new StrataError('NOT_FOUND', `No such layer: ${arg}`)
  throw new StrataError('INVALID_ARGUMENT', `"${arg}" matches ${matches.length} layers; give more of the chainID`)
}

function layerJson(l: LayerInfo): Record<string, unknown> {
  return { ChainID: l.chainId, DiffID: l.diffId, Parent: l.parent ?? '', CacheID: l.cacheId, Size: l.size, TarSplit: l.hasTarSplit }
}

async function ls(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const { values, positionals } = parseFlags(args, { 'no-trunc': { type: 'boolean' }, format: { type: 'string' } }, HELPS.ls)
  checkArgCount(positionals, { max: 0 }, HELPS.ls)
  if (values.format !== undefined && values.format !== 'json') throw new UsageError(`--format takes "json", not "${values.format}"`)
  const layers = await withStore(global, (store) => store.layers.list())
  if (values.format === 'json') return layers.map((l) => `${JSON.stringify(layerJson(l))}\n`).join('')
  const id = (d: string | null): string => (d === null ? '' : values['no-trunc'] === true ? d : shortId(d))
  return table([['CHAIN ID', 'DIFF ID', 'PARENT', 'SIZE', 'TAR-SPLIT'], ...layers.map((l) => [id(l.chainId), id(l.diffId), id(l.parent), humanSize(l.size), l.hasTarSplit ? 'yes' : 'no'])])
}

async function inspect(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const { positionals } = parseFlags(args, {}, HELPS.inspect)
  checkArgCount(positionals, { min: 1 }, HELPS.inspect)
  const out = await withStore(global, async (store) => {
    const all: Array<Record<string, unknown>> = []
    for (const arg of positionals) {
      const info = await store.layers.info(await resolveChain(store, arg))
      all.push({ ...layerJson(info), GraphDriver: { Name: store.driver.name, Data: await store.driver.getMetadata(info.cacheId) } })
    }
    return all
  })
  return `${JSON.stringify(out, null, 4)}\n`
}

async function importLayer(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const { values, positionals } = parseFlags(args, { parent: { type: 'string' } }, HELPS.import)
  checkArgCount(positionals, { min: 1, max: 1 }, HELPS.import)
  return withStore(global, async (store) => {
    const parent = values.parent === undefined ? null : await resolveChain(store, values.parent)
    const { layer } = await store.layers.register(openInput(positionals[0]!), parent)
    // The handle is simply let go with the process: releasing it would
    // delete the layer, which nothing else refers to yet.
    return `${layer.chainId}\n`
  })
}

async function exportLayer(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const { values, positionals } = parseFlags(args, { output: { type: 'string', short: 'o' } }, HELPS.export)
  checkArgCount(positionals, { min: 1, max: 1 }, HELPS.export)
  return withStore(global, async (store) => {
    const chain = await resolveChain(store, positionals[0]!)
    const exported = await store.layers.export(chain)
    await writeOutput(values.output ?? '-', exported.stream)
    const verified = await exported.verified
    if (verified.matches) return ''
    return {
      stdout: '',
      stderr: `WARNING: layer ${chain} has no tar-split; the tar generated from its files hashes to ${verified.digest}, not its diffID\n`,
    }
  })
}

async function rm(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const { positionals } = parseFlags(args, {}, HELPS.rm)
  checkArgCount(positionals, { min: 1 }, HELPS.rm)
  return withStore(global, async (store) => {
    const lines: string[] = []
    for (const arg of positionals) {
      const chain = await resolveChain(store, arg)
      const deleted = await store.layers.collect(chain)
      if (!deleted.includes(chain)) {
        throw new StrataError('IN_USE', `Layer ${chain} is in use (by an image, a child layer, a container or a running strata process)`)
      }
      lines.push(...deleted.map((c) => `Deleted: ${c}`))
    }
    return `${lines.join('\n')}\n`
  })
}

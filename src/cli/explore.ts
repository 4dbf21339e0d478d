/**
 * `strata explore [IMAGE]`: the layer explorer in a browser, served on
 * 127.0.0.1 until interrupted; and `strata image layers IMAGE`, its
 * terminal fallback: per-layer added/modified/removed counts and wasted
 * bytes, and dive's efficiency of the image.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { Explorer, type ImageAnalysis, type ExploreImage } from '../explore/index.js'
import { DEFAULT_ASSETS_DIR, startExploreServer } from '../explore-server/index.js'
import { Store } from '../store/index.js'
import { humanSize } from './output.js'
import { checkArgCount, parseFlags } from './args.js'
import { UsageError } from './errors.js'
import type { GlobalOptions } from './global.js'
import type { CommandResult } from './output.js'
import type { VerbIO } from './progress.js'
import { interrupted } from './signals.js'
import { withStore } from './store.js'

export const EXPLORE_HELP = `Usage: strata explore [OPTIONS] [IMAGE]

Serve the layer explorer on http://127.0.0.1:PORT/ until interrupted (Ctrl-C):
every image of the store, what each layer added, changed, removed and
wasted, file by file, dive's efficiency score, and image comparison. It
reads the layer store's tar-split metadata and changes nothing. It opens no
browser: open the URL it prints. With IMAGE, the URL opens that image.

Only this machine is served: the server listens on 127.0.0.1 and refuses
other peers and Host headers other than localhost/127.0.0.1.

Options:
  -p, --port N   Listen on port N (default: a free port)
`

export const LAYERS_HELP = `Usage: strata image layers [--format json] IMAGE
       strata history --layers [--format json] IMAGE

Show what each layer of an image changed: paths added, modified and removed
relative to the layers below, and the bytes of lower files it overwrote or
removed (wasted: still in the image, seen by nobody), then the image's
efficiency as dive computes it. Read from tar-split metadata, nothing unpacked.

Options:
      --format json   One JSON document: the layers and the efficiency
`

export async function exploreCommand(args: string[], global: GlobalOptions, io: VerbIO): Promise<CommandResult> {
  const { values, positionals } = parseFlags(args, { port: { type: 'string', short: 'p' } }, EXPLORE_HELP)
  checkArgCount(positionals, { max: 1 }, EXPLORE_HELP)
  let port = 0
  if (values.port !== undefined) {
    port = Number(values.port)
    if (!/^\d+$/.test(values.port) || port < 1 || port > 65535) throw new UsageError(`--port takes a port number 1-65535, not "${values.port}"`)
  }
  const store = await Store.open({ root: global.root, ...(global.driver === undefined ? {} : { driver: global.driver }), driverOptions: global.storageOpts })
  try {
    const explorer = new Explorer(store)
    const image = positionals[0] === undefined ? undefined : await store.findImage(positionals[0])
    const server = await startExploreServer({ explorer, port })
    const stopped = interrupted()
    try {
      const url = image === undefined ? server.url : `${server.url}#image=${encodeURIComponent(image)}`
      const warn = existsSync(join(DEFAULT_ASSETS_DIR, 'index.html')) ? '' : "warning: the explorer's page is not built (run `npm run build`); the API works\n"
      io.stdout.write(`${warn}Exploring ${store.root} (${store.driver.name}) at ${url}\nPress Ctrl-C to stop.\n`)
      await stopped
    } finally {
      await server.close()
    }
  } finally {
    await store.close()
  }
  return ''
}

/** Control characters of a history command shown as escapes, so they cannot drive the terminal. */
function printable(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => (c === '\t' ? ' ' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`))
}

export async function imageLayersCommand(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const { values, positionals } = parseFlags(args, { format: { type: 'string' }, layers: { type: 'boolean' } }, LAYERS_HELP)
  if (values.format !== undefined && values.format !== 'json') throw new UsageError(`--format takes "json", not "${values.format}"`)
  checkArgCount(positionals, { min: 1, max: 1 }, LAYERS_HELP)
  const [image, analysis] = await withStore(global, async (store) => {
    const explorer = new Explorer(store)
    return [await explorer.image(positionals[0]!), await explorer.analysis(positionals[0]!, { limit: 10 })] as const
  })
  if (values.format === 'json') return `${JSON.stringify(layersDocument(image, analysis), null, 2)}\n`
  return layersTable(image, analysis)
}

function layersDocument(image: ExploreImage, analysis: ImageAnalysis): Record<string, unknown> {
  return {
    Id: image.id,
    Tags: image.tags,
    Layers: image.layers.map((l) => {
      const c = analysis.layers[l.index]!
      const problem = l.problem ?? c.problem
      return {
        Index: l.index,
        ChainID: l.chainId,
        DiffID: l.diffId,
        Size: l.size,
        CreatedBy: l.createdBy,
        Added: c.added,
        Modified: c.modified,
        Removed: c.removed,
        WastedBytes: c.wastedBytes,
        Members: c.members,
        ...(problem === undefined ? {} : { Error: problem }),
      }
    }),
    Efficiency: {
      Score: analysis.efficiency.score,
      WastedBytes: analysis.efficiency.wastedBytes,
      UserSizeBytes: analysis.efficiency.userSizeBytes,
      WastedUserPercent: analysis.efficiency.wastedUserPercent,
      Inefficiencies: analysis.efficiency.inefficiencies.map((i) => ({ Path: i.path, Count: i.count, CumulativeSize: i.cumulativeSize })),
    },
    Incomplete: analysis.incomplete,
  }
}

function layersTable(image: ExploreImage, analysis: ImageAnalysis): CommandResult {
  const rows = [['LAYER', 'SIZE', 'ADDED', 'MODIFIED', 'REMOVED', 'WASTED', 'CREATED BY']]
  const errors: string[] = []
  for (const l of image.layers) {
    const c = analysis.layers[l.index]!
    const problem = l.problem ?? c.problem
    const cmd = printable(l.createdBy.replace(/^\/bin\/sh -c (#\(nop\) )?/, '').trim())
    if (problem !== undefined) {
      rows.push([String(l.index), l.size < 0 ? '?' : humanSize(l.size), '?', '?', '?', '?', cmd.length > 60 ? `${cmd.slice(0, 57)}...` : cmd])
      errors.push(`layer ${l.index}: ${problem.message}`)
      continue
    }
    rows.push([String(l.index), humanSize(l.size), String(c.added), String(c.modified), String(c.removed), humanSize(c.wastedBytes), cmd.length > 60 ? `${cmd.slice(0, 57)}...` : cmd])
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  const right = new Set([1, 2, 3, 4, 5])
  let out = rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : right.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('   ').trimEnd() + '\n').join('')
  const e = analysis.efficiency
  out += `\nEfficiency (as dive computes it): ${(e.score * 100).toFixed(1)}%   wasted ${humanSize(e.wastedBytes)}`
  out += e.userSizeBytes > 0 ? ` (${(e.wastedUserPercent * 100).toFixed(1)}% of ${humanSize(e.userSizeBytes)} above the base layer)\n` : '\n'
  if (e.inefficiencies.length > 0) {
    out += '\nCOUNT   TOTAL SPACE   PATH\n'
    for (const i of e.inefficiencies) out += `${String(i.count).padStart(5)}   ${humanSize(i.cumulativeSize).padStart(11)}   ${printable(i.path)}\n`
  }
  if (analysis.incomplete) out += '\nSome layers could not be read; the figures leave them out.\n'
  if (errors.length === 0) return out
  return { stdout: out, stderr: errors.map((m) => `Error: ${m}\n`).join(''), exitCode: 1 }
}

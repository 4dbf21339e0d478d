/**
 * `strata push [--insecure] [-q] NAME[:TAG]`: an image from the store to a
 * registry, as `docker push` does it, with docker's output (a line per
 * layer as it completes, as docker prints when stdout is not a terminal):
 *
 *   The push refers to repository [127.0.0.1:5000/test/img]
 *   3f4d90098f5b: Pushed
 *   5c5d2a1b8e8a: Layer already exists
 *   9a0b1c2d3e4f: Mounted from test/other
 *   1: digest: sha256:... size: 942
 *
 * On a terminal each layer's line is rewritten in place while it runs
 * (Preparing, Pushing <bytes sent>, then its final status). The short IDs
 * are the layers' diffIDs, as docker shows them on push.
 * With -q only the pushed reference. Credentials come from docker's
 * `~/.docker/config.json` (`$DOCKER_CONFIG`); registries on loopback are
 * spoken to over plain HTTP, others over HTTPS unless --insecure.
 */
import { pushImage, type PushProgress, type PushResult, type PushedLayer } from '../transport/registry/index.js'
import { parseReference } from '../image/index.js'
import { checkArgCount, parseFlags } from './args.js'
import { UsageError } from './errors.js'
import type { GlobalOptions } from './global.js'
import type { CommandResult } from './output.js'
import { progressSize, type ProgressSink, type VerbIO } from './progress.js'
import { withStore } from './store.js'
import { rethrowAs } from './transport-common.js'

export const PUSH_HELP = `Usage: strata push [OPTIONS] NAME[:TAG]
       strata image push [OPTIONS] NAME[:TAG]

Upload an image from the store to a registry (registry v2 API, docker v2 schema 2).
Layers the registry has already are not sent; layers in another repository
of the same registry are mounted from there.

Options:
      --insecure     Use plain HTTP (loopback registries always do)
  -q, --quiet        Print only the pushed reference
  -h, --help         Show this help

Credentials are read from docker's config.json ($DOCKER_CONFIG, else ~/.docker).
`

function short(digest: string): string {
  return digest.slice('sha256:'.length, 'sha256:'.length + 12)
}

/** docker's final status of a pushed layer. */
export function pushedLayerLine(l: PushedLayer): string {
  const status = l.status === 'pushed' ? 'Pushed' : l.status === 'exists' ? 'Layer already exists' : `Mounted from ${l.from ?? ''}`
  return `${short(l.diffId)}: ${status}`
}

/** Redraw a layer's line at most this often while its bytes move. */
const REDRAW_INTERVAL_MS = 100
const ESC = '\x1b'

/**
 * docker's push progress on a terminal: a line per layer, in the order
 * layers start ("Preparing"), rewritten in place ("Pushing  1.049MB",
 * then "Pushed" / "Layer already exists" / "Mounted from ..."), the cursor
 * resting below the lines.
 */
export class PushProgressLines {
  readonly #sink: ProgressSink
  readonly #now: () => number
  readonly #lines = new Map<number, { index: number; drawnAt: number }>()

  constructor(sink: ProgressSink, now: () => number = Date.now) {
    this.#sink = sink
    this.#now = now
  }

  readonly listener = (e: PushProgress): void => {
    const text = e.phase === 'done' ? pushedLayerLine(e.result).slice(14) : e.phase === 'uploaded' ? `Pushing  ${progressSize(e.bytes)}` : e.phase === 'pushing' ? 'Pushing' : 'Preparing'
    let line = this.#lines.get(e.layer)
    if (line === undefined) {
      line = { index: this.#lines.size, drawnAt: 0 }
      this.#lines.set(e.layer, line)
      this.#sink.write('\n')
    } else if (e.phase === 'uploaded' && this.#now() - line.drawnAt < REDRAW_INTERVAL_MS) {
      return
    }
    const up = this.#lines.size - line.index
    this.#sink.write(`${ESC}[${up}A${ESC}[2K\r${short(e.diffId)}: ${text}\r${ESC}[${up}B`)
    line.drawnAt = this.#now()
  }
}

export async function pushCommand(args: string[], global: GlobalOptions, io: VerbIO): Promise<CommandResult> {
  const { values, positionals } = parseFlags(args, { insecure: { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' } }, PUSH_HELP)
  checkArgCount(positionals, { min: 1, max: 1 }, PUSH_HELP)
  const name = positionals[0]!
  const quiet = values.quiet === true
  try {
    const ref = parseReference(name)
    if (ref.digest !== undefined) throw new UsageError(`"strata push" takes NAME[:TAG], not a digest reference: ${name}`)
  } catch (err) {
    if (err instanceof UsageError) throw err
    rethrowAs(err, `pushing ${name}`)
  }
  const sink = io.stdout

  const result = await withStore(global, async (store): Promise<PushResult> => {
    const lines = !quiet && sink.isTTY ? new PushProgressLines(sink) : undefined
    try {
      return await pushImage(store, name, {
        ...(values.insecure === true ? { insecure: true } : {}),
        ...(quiet
          ? {}
          : {
              onResolved: (info) => sink.write(`The push refers to repository [${info.repository}]\n`),
              onProgress: (event) => {
                if (lines !== undefined) lines.listener(event)
                else if (event.phase === 'done') sink.write(`${pushedLayerLine(event.result)}\n`)
              },
            }),
      })
    } catch (err) {
      rethrowAs(err, `pushing ${name}`)
    }
  })

  const lines = quiet ? [result.reference] : [`${result.tag}: digest: ${result.digest} size: ${result.size}`]
  return { stdout: lines.map((l) => `${l}\n`).join(''), stderr: result.warnings.map((w) => `WARNING: ${w}\n`).join('') }
}

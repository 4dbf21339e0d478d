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
 * (Preparing, Waiting for an upload slot, Pushing [bar] read/size, then
 * its final status). The short IDs
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
import { StatusLines, renderProgress, type ProgressSink, type VerbIO } from './progress.js'
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

/**
 * docker's push progress on a terminal: a line per layer, in the image's
 * order, "Waiting" until its upload gets a slot, then "Preparing",
 * "Pushing [bar] x/y" (the layer's tar read against its size in the
 * store, as docker counts it), then "Pushed" / "Layer already exists" /
 * "Mounted from ...", the cursor resting below the lines.
 */
export class PushProgressLines {
  readonly #lines: StatusLines

  constructor(sink: ProgressSink, now: () => number = Date.now) {
    this.#lines = new StatusLines(sink, now)
  }

  /** Every layer's line, "Waiting", before any starts. */
  waiting(diffIds: readonly string[]): void {
    diffIds.forEach((d, i) => this.#lines.set(i, `${short(d)}: Waiting`))
  }

  readonly listener = (e: PushProgress): void => {
    const text =
      e.phase === 'done'
        ? pushedLayerLine(e.result).slice(14)
        : e.phase === 'uploaded'
          ? `Pushing ${renderProgress(e.read, e.total, this.#lines.width)}`
          : e.phase === 'pushing'
            ? 'Pushing'
            : 'Preparing'
    this.#lines.set(e.layer, `${short(e.diffId)}: ${text}`, e.phase === 'uploaded')
  }

  finish(): void {
    this.#lines.finish()
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
              onResolved: (info) => {
                sink.write(`The push refers to repository [${info.repository}]\n`)
                lines?.waiting(info.diffIds)
              },
              onProgress: (event) => {
                if (lines !== undefined) lines.listener(event)
                else if (event.phase === 'done') sink.write(`${pushedLayerLine(event.result)}\n`)
              },
            }),
      })
    } catch (err) {
      rethrowAs(err, `pushing ${name}`)
    } finally {
      lines?.finish()
    }
  })

  const lines = quiet ? [result.reference] : [`${result.tag}: digest: ${result.digest} size: ${result.size}`]
  return { stdout: lines.map((l) => `${l}\n`).join(''), stderr: result.warnings.map((w) => `WARNING: ${w}\n`).join('') }
}

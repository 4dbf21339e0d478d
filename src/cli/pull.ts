/**
 * `strata pull [--platform OS/ARCH[/VARIANT]] [--insecure] [-q] NAME[:TAG|@DIGEST]`:
 * an image from a registry into the store, as `docker pull` does it, with
 * docker's output:
 *
 *   1: Pulling from test/img
 *   3f4d90098f5b: Pull complete          (one line per layer when stdout is not a terminal;
 *   5c5d2a1b8e8a: Already exists           rewritten in place while it runs when it is)
 *   Digest: sha256:...
 *   Status: Downloaded newer image for 127.0.0.1:5000/test/img:1
 *   127.0.0.1:5000/test/img:1
 *
 * With -q only the last line. Credentials come from docker's
 * `~/.docker/config.json` (`$DOCKER_CONFIG`); registries on loopback are
 * spoken to over plain HTTP, others over HTTPS unless --insecure.
 */
import { preparePull, pullImage, type PullResult } from '../transport/registry/index.js'
import { familiarString, parseReference, withDefaultTag } from '../image/index.js'
import type { LayerProgress, Platform } from '../transport/index.js'
import { checkArgCount, parseFlags } from './args.js'
import { UsageError } from './errors.js'
import type { GlobalOptions } from './global.js'
import type { CommandResult } from './output.js'
import { StatusLines, renderProgress, type VerbIO } from './progress.js'
import { withStore } from './store.js'
import { rethrowAs } from './transport-common.js'

export const PULL_HELP = `Usage: strata pull [OPTIONS] NAME[:TAG|@DIGEST]
       strata image pull [OPTIONS] NAME[:TAG|@DIGEST]

Download an image from a registry (registry v2 API) into the store.

Options:
      --platform OS/ARCH[/VARIANT]  Pick this platform from a multi-platform image (default: this machine's)
      --insecure                    Use plain HTTP (loopback registries always do)
  -q, --quiet                       Print only the image's full reference
  -h, --help                        Show this help

Credentials are read from docker's config.json ($DOCKER_CONFIG, else ~/.docker).
`

/**
 * docker's per-layer statuses on a terminal, as honest as strata's one
 * pass allows: the download is the extraction (the blob is decompressed
 * and applied as it streams), so a layer is "Waiting" until it gets a
 * slot, "Downloading [bar] x/y" while its bytes stream, "Verifying
 * Checksum" once they are all in (the digest is settled at the stream's
 * end), "Download complete" when the digest checked, and "Pull complete"
 * once the layer is registered.
 */
export function pullStatus(event: LayerProgress, width: number): { text: string; throttle?: boolean } {
  switch (event.phase) {
    case 'waiting':
      return { text: 'Waiting' }
    case 'exists':
      return { text: 'Already exists' }
    case 'copying':
      if (event.total !== undefined && event.current >= event.total) return { text: 'Verifying Checksum' }
      return { text: `Downloading ${renderProgress(event.current, event.total, width)}`, throttle: true }
    case 'verified':
      return { text: 'Download complete' }
    case 'done':
      return { text: 'Pull complete' }
  }
}

/** `linux/arm64/v8` → a Platform; a usage error otherwise. */
export function parsePlatform(value: string): Platform {
  const parts = value.split('/')
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/.test(p))) {
    throw new UsageError(`--platform takes OS/ARCH[/VARIANT] (e.g. linux/amd64), not "${value}"`)
  }
  const p: Platform = { os: parts[0]!, architecture: parts[1]! }
  if (parts[2] !== undefined) p.variant = parts[2]
  return p
}

function short(digest: string): string {
  return digest.slice('sha256:'.length, 'sha256:'.length + 12)
}

export async function pullCommand(args: string[], global: GlobalOptions, io: VerbIO): Promise<CommandResult> {
  const { values, positionals } = parseFlags(args, { platform: { type: 'string' }, insecure: { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' } }, PULL_HELP)
  checkArgCount(positionals, { min: 1, max: 1 }, PULL_HELP)
  const name = positionals[0]!
  const platform = values.platform === undefined ? undefined : parsePlatform(values.platform)
  const quiet = values.quiet === true
  let ref
  try {
    ref = parseReference(name)
  } catch (err) {
    rethrowAs(err, `pulling ${name}`)
  }
  const shown = ref.digest ?? withDefaultTag(ref).tag!
  const sink = io.stdout

  let layerDigests: string[] = []
  // The registry is asked while the store opens: neither waits for the other (~0.1 s each on a cold start).
  const prepared = preparePull(name, {
    ...(platform === undefined ? {} : { platform }),
    ...(values.insecure === true ? { insecure: true } : {}),
    onResolved: (image) => {
      layerDigests = image.manifest.layers.map((l) => l.digest)
      if (!quiet) sink.write(`${shown}: Pulling from ${image.reference.path}\n`)
    },
  })
  // Observed below, once the store is open; a store that fails to open is the error reported then.
  prepared.catch(() => {})

  const result = await withStore(global, async (store): Promise<PullResult> => {
    const lines = !quiet && sink.isTTY ? new StatusLines(sink) : undefined
    const onProgress = quiet
      ? undefined
      : (event: LayerProgress): void => {
          const blob = layerDigests[event.layer] ?? event.diffId
          if (lines !== undefined) {
            const { text, throttle } = pullStatus(event, lines.width)
            // The digest checked with the last bytes: "Verifying Checksum" shows before "Download complete", as docker's does.
            if (event.phase === 'verified') lines.set(event.layer, `${short(blob)}: Verifying Checksum`)
            lines.set(event.layer, `${short(blob)}: ${text}`, throttle)
            return
          }
          if (event.phase === 'exists') sink.write(`${short(blob)}: Already exists\n`)
          else if (event.phase === 'done') sink.write(`${short(blob)}: Pull complete\n`)
        }
    try {
      return await pullImage(store, await prepared, onProgress === undefined ? {} : { onProgress })
    } catch (err) {
      rethrowAs(err, `pulling ${name}`)
    } finally {
      lines?.finish()
    }
  })

  const full = result.reference
  const lines = quiet
    ? [full]
    : [`Digest: ${result.digest}`, `Status: ${result.updated ? 'Downloaded newer image' : 'Image is up to date'} for ${familiarString(parseReference(full))}`, full]
  return { stdout: lines.map((l) => `${l}\n`).join(''), stderr: result.warnings.map((w) => `WARNING: ${w}\n`).join('') }
}

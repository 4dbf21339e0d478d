/**
 * `strata load [-i FILE] [-q]`: images from a docker-archive, an OCI
 * archive or an OCI layout (plain, gzip or zstd; a file, a directory or
 * stdin) into the store, as `docker load` does. Per-layer bars while it
 * runs when stdout is a terminal (not with -q), then one line per image:
 * `Loaded image: busybox:latest` for each tag, or `Loaded image ID:
 * sha256:...` for an image without one, exactly as docker prints them.
 *
 * A stream is spooled by the transport into `<root>/tmp`, on the data
 * root's filesystem, never into the system's /tmp.
 */
import { availableParallelism } from 'node:os'
import { prestartApplyWorkers, stopIdleApplyWorkers } from '../archive/index.js'
import { StrataError } from '../errors/index.js'
import { familiarString, parseReference } from '../image/index.js'
import { loadImages, openImageSource, type LoadResult } from '../transport/index.js'
import { checkArgCount, parseFlags } from './args.js'
import { UsageError } from './errors.js'
import type { GlobalOptions } from './global.js'
import type { CommandResult } from './output.js'
import { layerProgress, type VerbIO } from './progress.js'
import { withStore } from './store.js'
import { rethrowAs, transportTmpDir } from './transport-common.js'

export const LOAD_HELP = `Usage: strata load [-i FILE] [-q]
       strata image load [-i FILE] [-q]

Load images from a docker-archive, an OCI archive or an OCI layout
(tar, tar.gz or tar.zst; or a layout directory), read from stdin without -i.

Options:
  -i, --input FILE   Read from FILE (or an OCI layout directory) instead of stdin
  -q, --quiet        Suppress the progress output
  -h, --help         Show this help
`

export async function loadCommand(args: string[], global: GlobalOptions, io: VerbIO): Promise<CommandResult> {
  const { values, positionals } = parseFlags(args, { input: { type: 'string', short: 'i' }, quiet: { type: 'boolean', short: 'q' } }, LOAD_HELP)
  checkArgCount(positionals, { max: 0 }, LOAD_HELP)
  const input = values.input ?? '-'
  if (input === '') throw new UsageError('-i needs a file name')
  // docker's guard: reading a terminal would wait forever for a tar that is not coming.
  if (input === '-' && io.stdinIsTTY) throw new StrataError('INVALID_ARGUMENT', 'requested load from stdin, but stdin is empty')
  const what = input === '-' ? 'stdin' : input

  // The layers apply in worker threads (one per core, side by side): started
  // now, their start overlaps opening the store and reading the archive's
  // index instead of following it (see prestartApplyWorkers).
  prestartApplyWorkers(availableParallelism())
  const result = await withStore(global, async (store): Promise<LoadResult> => {
    // A driver that applies on this thread (vfs, btrfs...) has no use for them.
    if (store.driver.parallelApply !== true) stopIdleApplyWorkers()
    const tmpDir = await transportTmpDir(store.root)
    const progress = layerProgress(io.stdout, 'Loading layer', values.quiet === true)
    try {
      const source = await openImageSource(input === '-' ? process.stdin : input, { tmpDir })
      try {
        return await loadImages(store, source, { onProgress: progress.onProgress })
      } finally {
        progress.finish()
        await source.close()
      }
    } catch (err) {
      rethrowAs(err, `loading ${what}`)
    }
  })

  const lines: string[] = []
  const warnings: string[] = []
  for (const image of result.images) {
    if (image.tagged.length === 0) lines.push(`Loaded image ID: ${image.id}`)
    for (const ref of image.tagged) lines.push(`Loaded image: ${familiarString(parseReference(ref))}`)
    for (const name of image.skippedNames) warnings.push(`WARNING: not tagging image ${image.id} as "${name}": not a valid reference`)
  }
  // dockerd 20.10: what loaded before a refused RepoTags name stays, and the load fails with its error.
  if (result.refused !== undefined) warnings.push(`Error: loading ${what}: ${result.refused.message}`)
  return {
    stdout: lines.map((l) => `${l}\n`).join(''),
    stderr: warnings.map((l) => `${l}\n`).join(''),
    ...(result.refused === undefined ? {} : { exitCode: 1 }),
  }
}

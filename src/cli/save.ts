/**
 * `strata save [-o FILE] [--format docker-archive|oci-archive|oci-layout]
 * IMAGE...`: images from the store into an archive (or an OCI layout
 * directory), as `docker save` does. Without -o (or with `-o -`) the
 * archive goes to stdout, which must then not be a terminal: docker's
 * "cowardly refusing" rule, since a tar on a screen helps nobody.
 *
 * The transport writes a file beside its destination and renames it at
 * commit; for stdout it writes into `<root>/tmp` first and the file is
 * then streamed out, so a failed save never sends half an archive. A
 * device, fifo or socket given with -o (/dev/null) is treated as stdout:
 * spooled, then written into it, never renamed over.
 * Per-layer bars are drawn when the archive goes to a file and stdout is
 * a terminal.
 */
import { createReadStream } from 'node:fs'
import { join } from 'node:path'
import { StrataError } from '../errors/index.js'
import { makeOwnedDir, specialFileKind } from '../fs/index.js'
import { openImageDestination, saveImages } from '../transport/index.js'
import { checkArgCount, parseFlags } from './args.js'
import { UsageError } from './errors.js'
import type { GlobalOptions } from './global.js'
import { validateOutputPath, writeOutput } from './io.js'
import type { CommandResult } from './output.js'
import { layerProgress, QUIET_SINK, type VerbIO } from './progress.js'
import { withStore } from './store.js'
import { parseFormat, rethrowAs, SAVE_FORMATS, transportTmpDir } from './transport-common.js'

export const SAVE_HELP = `Usage: strata save [-o FILE] [--format FORMAT] IMAGE...
       strata image save [-o FILE] [--format FORMAT] IMAGE...

Save one or more images (by name or ID) to an archive, streamed to stdout
without -o.

Options:
  -o, --output FILE    Write to FILE (a directory for oci-layout); "-" is stdout
      --format FORMAT  ${SAVE_FORMATS.join(', ')} (default docker-archive)
  -h, --help           Show this help
`

export async function saveCommand(args: string[], global: GlobalOptions, io: VerbIO): Promise<CommandResult> {
  const { values, positionals } = parseFlags(args, { output: { type: 'string', short: 'o' }, format: { type: 'string' } }, SAVE_HELP)
  checkArgCount(positionals, { min: 1 }, SAVE_HELP)
  const format = parseFormat(values.format)
  const output = values.output ?? '-'
  if (output === '') throw new UsageError('-o needs a file name')
  await validateOutputPath(output, 'failed to save image')
  const toStdout = output === '-'
  const special = !toStdout && (await specialFileKind(output)) !== undefined
  if (special && format === 'oci-layout') throw new UsageError(`--format oci-layout writes a directory; "${output}" is not one`)
  if (toStdout && format === 'oci-layout') throw new UsageError('--format oci-layout writes a directory; give it with -o DIR')
  if (toStdout && io.stdout.isTTY) throw new StrataError('INVALID_ARGUMENT', 'cowardly refusing to save to a terminal. Use the -o flag or redirect')

  await withStore(global, async (store) => {
    const tmpDir = await transportTmpDir(store.root)
    // Owned by this process (src/fs/owned.ts): a killed save leaves nothing the next open keeps.
    const spool = toStdout || special ? makeOwnedDir(tmpDir, 'save-') : undefined
    const spoolDir = spool?.path
    try {
      const path = spoolDir === undefined ? output : join(spoolDir, 'image.tar')
      // Bars share stdout with nothing else only when the archive goes to a file.
      const progress = layerProgress(toStdout ? QUIET_SINK : io.stdout, 'Saving layer')
      try {
        // saveImages commits the destination, or aborts it on any failure.
        await saveImages(store, positionals, openImageDestination(path, format), { onProgress: progress.onProgress })
      } catch (err) {
        rethrowAs(err, `saving ${positionals.join(', ')}`)
      } finally {
        progress.finish()
      }
      if (spoolDir !== undefined) await writeOutput(toStdout ? '-' : output, createReadStream(path))
    } finally {
      await spool?.remove()
    }
  })
  return ''
}

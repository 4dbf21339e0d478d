/**
 * `strata import FILE|- [REPOSITORY[:TAG]] [-m MSG] [-c CHANGE]...
 * [--platform OS/ARCH[/VARIANT]]`: a root filesystem tar (plain, gzip or
 * zstd) becomes a one-layer image, as `docker import` makes it, and its
 * ID is printed. The history comment says "Imported from -" for a file
 * too, since that is what docker writes (its CLI sends the file as the
 * request body, like stdin).
 */
import { open } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import { StrataError } from '../errors/index.js'
import { parseReference } from '../image/index.js'
import { importRootfs, type ImportOptions } from '../transport/index.js'
import { checkArgCount, parseFlags } from './args.js'
import { UsageError } from './errors.js'
import type { GlobalOptions } from './global.js'
import type { CommandResult } from './output.js'
import { layerProgress, type VerbIO } from './progress.js'
import { withStore } from './store.js'
import { rethrowAs } from './transport-common.js'

export const IMPORT_HELP = `Usage: strata import [OPTIONS] FILE|- [REPOSITORY[:TAG]]
       strata image import [OPTIONS] FILE|- [REPOSITORY[:TAG]]

Create an image from a root filesystem tar (plain, gzip or zstd); print its ID.

Options:
  -c, --change CHANGE      Apply a Dockerfile instruction to the image config
                           (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE,
                           VOLUME, ONBUILD); repeatable
  -m, --message MESSAGE    Set the history comment (default "Imported from -")
      --platform OS/ARCH[/VARIANT]
                           Set the image's platform (default this machine's)
  -h, --help               Show this help
`

function parsePlatform(value: string): NonNullable<ImportOptions['platform']> {
  const parts = value.toLowerCase().split('/')
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/.test(p))) {
    throw new UsageError(`--platform takes OS/ARCH[/VARIANT] (e.g. linux/arm64/v8), not "${value}"`)
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined]
  return variant === undefined ? { os, architecture } : { os, architecture, variant }
}

/** Opens the input now, so a missing file fails before the store is touched. */
async function openSource(file: string): Promise<Readable> {
  if (file === '-') return process.stdin
  if (/^https?:\/\//i.test(file)) {
    throw new StrataError('NOT_SUPPORTED', `importing from a URL is not supported (${file}); download it and import the file`)
  }
  const handle = await open(file, 'r')
  return handle.createReadStream()
}

export async function importCommand(args: string[], global: GlobalOptions, io: VerbIO): Promise<CommandResult> {
  const { values, positionals } = parseFlags(
    args,
    { change: { type: 'string', short: 'c', multiple: true }, message: { type: 'string', short: 'm' }, platform: { type: 'string' } },
    IMPORT_HELP,
  )
  checkArgCount(positionals, { min: 1, max: 2 }, IMPORT_HELP)
  const [file, reference] = positionals as [string, string | undefined]
  const what = file === '-' ? 'stdin' : file
  if (reference !== undefined) {
    try {
      const ref = parseReference(reference)
      if (ref.digest !== undefined) throw new StrataError('INVALID_ARGUMENT', `refusing to tag an imported image with a digest reference "${reference}"`)
    } catch (err) {
      rethrowAs(err, `importing ${what}`)
    }
  }
  const opts: ImportOptions = { sourceName: '-' }
  if (reference !== undefined) opts.reference = reference
  if (values.message !== undefined) opts.message = values.message
  if (values.change !== undefined) opts.changes = values.change
  if (values.platform !== undefined) opts.platform = parsePlatform(values.platform)

  const result = await withStore(global, async (store) => {
    const progress = layerProgress(io.stdout, 'Importing')
    try {
      const stream = await openSource(file)
      return await importRootfs(store, stream, { ...opts, ...(progress.onProgress === undefined ? {} : { onProgress: progress.onProgress }) })
    } catch (err) {
      rethrowAs(err, `importing ${what}`)
    } finally {
      progress.finish()
    }
  })
  return `${result.id}\n`
}

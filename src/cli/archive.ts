/**
 * `strata archive ...`: the archive engine on plain directories, without a
 * store. Useful to check a layer tar, and the quick start's end-to-end job.
 */
import { applyLayer, assembleTar, createTarSplitFile, directoryFileGetter, readTarSplit, type WhiteoutFormat } from '../archive/index.js'
import { parseDigest } from '../digest/index.js'
import { checkArgCount, parseFlags } from './args.js'
import { UnknownCommandError, UsageError } from './errors.js'
import { openInput, writeOutput } from './io.js'

export const ARCHIVE_HELP = `Usage: strata archive COMMAND

Work with layer tars and plain directories (no store needed).

Commands:
  apply [-w full|overlay|aufs] [--tar-split FILE] -i TAR|- DIR
        Apply a layer tar (plain, gzip or zstd) onto DIR; print its digests as JSON
  assemble --tar-split FILE [--diff-id DIGEST] [-o FILE|-] DIR
        Rebuild the original layer tar from tar-split metadata and DIR
`

const WHITEOUTS: readonly WhiteoutFormat[] = ['full', 'overlay', 'aufs']

const APPLY_HELP = 'Usage: strata archive apply [-w full|overlay|aufs] [--tar-split FILE] -i TAR|- DIR\n\nApply a layer tar (plain, gzip or zstd) onto DIR; print its digests as JSON.\n'
const ASSEMBLE_HELP = 'Usage: strata archive assemble --tar-split FILE [--diff-id DIGEST] [-o FILE|-] DIR\n\nRebuild the original layer tar from tar-split metadata and DIR.\n'

export async function archiveCommand(args: string[]): Promise<string> {
  const [verb, ...rest] = args
  switch (verb) {
    case 'apply':
      return apply(rest)
    case 'assemble':
      return assemble(rest)
    case undefined:
    case '--help':
    case '-h':
      return ARCHIVE_HELP
    default:
      throw new UnknownCommandError(verb, 'archive')
  }
}

async function apply(args: string[]): Promise<string> {
  const { values, positionals } = parseFlags(args, { input: { type: 'string', short: 'i' }, whiteouts: { type: 'string', short: 'w' }, 'tar-split': { type: 'string' } }, APPLY_HELP)
  checkArgCount(positionals, { min: 1, max: 1 }, APPLY_HELP)
  // cobra's words for a flag marked required.
  if (values.input === undefined) throw new UsageError('required flag(s) "input" not set')
  const whiteouts = (values.whiteouts ?? 'full') as WhiteoutFormat
  if (!WHITEOUTS.includes(whiteouts)) throw new UsageError(`--whiteouts must be one of ${WHITEOUTS.join(', ')}`)
  const tarSplit = values['tar-split'] === undefined ? undefined : createTarSplitFile(values['tar-split'])
  try {
    const result = await applyLayer(positionals[0]!, openInput(values.input), { whiteouts, ...(tarSplit === undefined ? {} : { tarSplit: tarSplit.sink }) })
    await tarSplit?.close()
    return `${JSON.stringify(result, null, 2)}\n`
  } catch (err) {
    tarSplit?.abort()
    throw err
  }
}

async function assemble(args: string[]): Promise<string> {
  const { values, positionals } = parseFlags(args, { 'tar-split': { type: 'string' }, 'diff-id': { type: 'string' }, output: { type: 'string', short: 'o' } }, ASSEMBLE_HELP)
  checkArgCount(positionals, { min: 1, max: 1 }, ASSEMBLE_HELP)
  if (values['tar-split'] === undefined) throw new UsageError('required flag(s) "tar-split" not set')
  const expected = values['diff-id'] === undefined ? undefined : parseDigest(values['diff-id'])
  const tar = assembleTar(readTarSplit(values['tar-split']), directoryFileGetter(positionals[0]!), expected === undefined ? {} : { expectedDigest: expected })
  await writeOutput(values.output ?? '-', tar)
  return ''
}

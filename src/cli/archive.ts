/**
 * `strata archive ...`: the archive engine on plain directories, without a
 * store. Useful to check a layer tar, and the quick start's end-to-end job.
 */
import { parseArgs } from 'node:util'
import { applyLayer, assembleTar, createTarSplitFile, directoryFileGetter, readTarSplit, type WhiteoutFormat } from '../archive/index.js'
import { parseDigest } from '../digest/index.js'
import { UsageError } from './errors.js'
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
      throw new UsageError(`unknown command "archive ${verb}"; see "strata archive --help"`)
  }
}

async function apply(args: string[]): Promise<string> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { input: { type: 'string', short: 'i' }, whiteouts: { type: 'string', short: 'w', default: 'full' }, 'tar-split': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  })
  if (values.help === true) return ARCHIVE_HELP
  if (values.input === undefined || positionals.length !== 1) throw new UsageError('usage: strata archive apply [-w full|overlay|aufs] [--tar-split FILE] -i TAR|- DIR')
  const whiteouts = values.whiteouts as WhiteoutFormat
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
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { 'tar-split': { type: 'string' }, 'diff-id': { type: 'string' }, output: { type: 'string', short: 'o', default: '-' }, help: { type: 'boolean', short: 'h' } },
  })
  if (values.help === true) return ARCHIVE_HELP
  if (values['tar-split'] === undefined || positionals.length !== 1) throw new UsageError('usage: strata archive assemble --tar-split FILE [--diff-id DIGEST] [-o FILE|-] DIR')
  const expected = values['diff-id'] === undefined ? undefined : parseDigest(values['diff-id'])
  const tar = assembleTar(readTarSplit(values['tar-split']), directoryFileGetter(positionals[0]!), expected === undefined ? {} : { expectedDigest: expected })
  await writeOutput(values.output!, tar)
  return ''
}

#!/usr/bin/env node
/**
 * The strata command. Every verb is a function that returns its output;
 * this file alone prints and chooses the exit status:
 * 0 success, 1 a failed operation, 2 a usage error.
 */
import { StrataError } from '../errors/index.js'
import { archiveCommand } from './archive.js'
import { UsageError } from './errors.js'

const HELP = `Usage: strata COMMAND [ARGS...]

Docker's image and layer storage, without a daemon.

Commands:
  archive   Apply, rebuild and compare layer tars on plain directories

Run 'strata COMMAND --help' for more on a command.
`

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  try {
    let out: string
    switch (command) {
      case 'archive':
        out = await archiveCommand(rest)
        break
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        out = HELP
        break
      default:
        throw new UsageError(`unknown command "${command}"; see "strata --help"`)
    }
    if (out !== '') process.stdout.write(out)
    return 0
  } catch (err) {
    return report(err)
  }
}

function report(err: unknown): number {
  if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true) {
    process.stderr.write(`strata: ${(err as Error).message}\n`)
    return 2
  }
  if (err instanceof StrataError) {
    process.stderr.write(`strata: ${err.message}\n`)
    if (err.hint !== undefined) process.stderr.write(`hint: ${err.hint}\n`)
    return 1
  }
  const e = err as Error
  process.stderr.write(`strata: ${e.message ?? String(err)}\n`)
  if (process.env.STRATA_DEBUG !== undefined) process.stderr.write(`${e.stack}\n`)
  return 1
}

process.exitCode = await main(process.argv.slice(2))

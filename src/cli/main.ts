#!/usr/bin/env node
/**
 * The strata command. Every verb is a function that returns its output;
 * this file alone prints and chooses the exit status:
 * 0 success, 1 a failed operation, 2 a usage error.
 */
import { StrataError } from '../errors/index.js'
import { archiveCommand } from './archive.js'
import { checkCommand } from './check.js'
import { UsageError } from './errors.js'
import { GLOBAL_HELP, parseGlobal } from './global.js'
import { infoCommand } from './info.js'
import { layerCommand } from './layer.js'
import type { CommandResult } from './output.js'

const HELP = `Usage: strata COMMAND [ARGS...]

Docker's image and layer storage, without a daemon.

Commands:
  info      Show the storage driver, its status and the data root
  check     Verify every layer, image and reference in the store (--repair)
  layer     Manage read-only layers: ls, inspect, import, export, rm
  archive   Apply and rebuild layer tars on plain directories

${GLOBAL_HELP}
Run 'strata COMMAND --help' for more on a command.
`

async function main(argv: string[]): Promise<number> {
  try {
    const { global, rest: verbArgs } = parseGlobal(argv, process.env)
    const [command, ...rest] = verbArgs
    let out: CommandResult
    switch (command) {
      case 'info':
        out = await infoCommand(rest, global)
        break
      case 'check':
        out = await checkCommand(rest, global)
        break
      case 'layer':
        out = await layerCommand(rest, global)
        break
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
    const { stdout, stderr, exitCode } = typeof out === 'string' ? { stdout: out, stderr: undefined, exitCode: 0 } : out
    if (stdout !== '') process.stdout.write(stdout)
    if (stderr !== undefined && stderr !== '') process.stderr.write(stderr)
    return exitCode ?? 0
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

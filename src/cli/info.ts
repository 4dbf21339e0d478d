/** `strata info`: the storage driver, its status lines and the data root, as `docker info` shows them. */
import { parseArgs } from 'node:util'
import { openDriver } from '../graphdriver/index.js'
import type { GlobalOptions } from './global.js'
import { UsageError } from './errors.js'

export const INFO_HELP = `Usage: strata info [--format json]

Show the storage driver in use, its status and the data root.
`

export async function infoCommand(args: string[], global: GlobalOptions): Promise<string> {
  const { values } = parseArgs({ args, options: { format: { type: 'string' }, help: { type: 'boolean', short: 'h' } } })
  if (values.help === true) return INFO_HELP
  if (values.format !== undefined && values.format !== 'json') throw new UsageError(`--format takes "json", not "${values.format}"`)
  const driver = await openDriver(global.root, global.driver, global.storageOpts)
  try {
    const status = await driver.status()
    if (values.format === 'json') return `${JSON.stringify({ Driver: driver.name, DriverStatus: status, DataRoot: global.root })}\n`
    return [`Storage Driver: ${driver.name}`, ...status.map(([k, v]) => ` ${k}: ${v}`), `Data Root: ${global.root}`, ''].join('\n')
  } finally {
    await driver.cleanup()
  }
}

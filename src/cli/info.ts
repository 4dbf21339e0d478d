/**
 * `strata info`: what `docker info` says about storage: the counts of
 * containers (layerdb mounts; strata has no container records yet, and
 * none runs) and images (every image, intermediate ones too, as docker
 * counts them), the storage driver, its status lines and the data root.
 */
import { parseArgs } from 'node:util'
import { storeCounts } from '../store/index.js'
import type { GlobalOptions } from './global.js'
import { UsageError } from './errors.js'
import { withStore } from './store.js'

export const INFO_HELP = `Usage: strata info [--format json]

Show the numbers of containers and images, the storage driver in use, its
status and the data root.
`

export async function infoCommand(args: string[], global: GlobalOptions): Promise<string> {
  const { values } = parseArgs({ args, options: { format: { type: 'string' }, help: { type: 'boolean', short: 'h' } } })
  if (values.help === true) return INFO_HELP
  if (values.format !== undefined && values.format !== 'json') throw new UsageError(`--format takes "json", not "${values.format}"`)
  return withStore(global, async (store) => {
    const counts = await storeCounts(store)
    const status = await store.driver.status()
    const stopped = counts.containers - counts.containersRunning
    if (values.format === 'json') {
      return `${JSON.stringify({
        Containers: counts.containers,
        ContainersRunning: counts.containersRunning,
        ContainersPaused: 0,
        ContainersStopped: stopped,
        Images: counts.images,
        Driver: store.driver.name,
        DriverStatus: status,
        DataRoot: global.root,
      })}\n`
    }
    return [
      `Containers: ${counts.containers}`,
      ` Running: ${counts.containersRunning}`,
      ' Paused: 0',
      ` Stopped: ${stopped}`,
      `Images: ${counts.images}`,
      `Storage Driver: ${store.driver.name}`,
      ...status.map(([k, v]) => ` ${k}: ${v}`),
      `Data Root: ${global.root}`,
      '',
    ].join('\n')
  })
}

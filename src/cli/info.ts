/**
 * `strata info`: what `docker info` says about storage: the counts of
 * containers and images (every image, intermediate ones too, as docker
 * counts them), the storage driver, its status lines and the data root,
 * and the host facts docker reports (kernel, OS, CPUs, memory). With
 * --format, a Go template over docker's field names (`{{.Driver}}`,
 * `{{.DockerRootDir}}`, `{{json .}}`), run as docker runs it.
 */
import { readFile } from 'node:fs/promises'
import { arch, cpus, hostname, release, totalmem } from 'node:os'
import { checkArgCount, parseFlags } from './args.js'
import { INT, INT64, sliceOf, STRING, structOf } from '../format/index.js'
import { storeCounts } from '../store/index.js'
import type { GlobalOptions } from './global.js'
import type { CommandResult } from './output.js'
import { withStore } from './store.js'
import { runSingleTemplate } from './template-verb.js'

export const INFO_HELP = `Usage: strata info [--format FORMAT]

Show the numbers of containers and images, the storage driver in use, its
status and the data root.

Options:
  -f, --format FORMAT   A Go template as docker's ('{{.Driver}}', '{{json .}}', 'json').
                        Fields: Containers ContainersRunning ContainersPaused
                        ContainersStopped Images Driver DriverStatus DockerRootDir
                        KernelVersion OperatingSystem OSType Architecture NCPU
                        MemTotal Name (and DataRoot, the same as DockerRootDir)
`

/** docker's system.info as far as strata fills it (types.Info's fields, in its order). */
const INFO = structOf(
  [
    { name: 'Containers', type: INT },
    { name: 'ContainersRunning', type: INT },
    { name: 'ContainersPaused', type: INT },
    { name: 'ContainersStopped', type: INT },
    { name: 'Images', type: INT },
    { name: 'Driver', type: STRING },
    { name: 'DriverStatus', type: sliceOf(sliceOf(STRING)) },
    { name: 'KernelVersion', type: STRING },
    { name: 'OperatingSystem', type: STRING },
    { name: 'OSType', type: STRING },
    { name: 'Architecture', type: STRING },
    { name: 'NCPU', type: INT },
    { name: 'MemTotal', type: INT64 },
    { name: 'DockerRootDir', type: STRING },
    { name: 'Name', type: STRING },
    { name: 'DataRoot', type: STRING },
  ],
  'system.info',
)

/** uname -m, as docker reports Architecture. */
function machine(): string {
  return ({ x64: 'x86_64', arm64: 'aarch64', ia32: 'i686', arm: 'armv7l' } as Record<string, string>)[arch()] ?? arch()
}

/** /etc/os-release's PRETTY_NAME, docker's OperatingSystem. */
async function operatingSystem(): Promise<string> {
  try {
    const text = await readFile('/etc/os-release', 'utf8')
    const m = /^PRETTY_NAME=(.*)$/m.exec(text)
    return m === null ? 'Linux' : m[1]!.replace(/^"(.*)"$/, '$1')
  } catch {
    return 'Linux'
  }
}

export async function infoCommand(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const { values, positionals } = parseFlags(args, { format: { type: 'string', short: 'f' } }, INFO_HELP)
  checkArgCount(positionals, { max: 0 }, INFO_HELP)
  const info = await withStore(global, async (store) => {
    const counts = await storeCounts(store)
    return {
      Containers: counts.containers,
      ContainersRunning: counts.containersRunning,
      ContainersPaused: 0,
      ContainersStopped: counts.containers - counts.containersRunning,
      Images: counts.images,
      Driver: store.driver.name,
      DriverStatus: await store.driver.status(),
      KernelVersion: release(),
      OperatingSystem: await operatingSystem(),
      OSType: 'linux',
      Architecture: machine(),
      NCPU: cpus().length,
      MemTotal: totalmem(),
      DockerRootDir: global.root,
      Name: hostname(),
      DataRoot: global.root,
    }
  })
  if (values.format !== undefined && values.format !== '') return runSingleTemplate(values.format, info, { name: '', type: INFO })
  return [
    `Containers: ${info.Containers}`,
    ` Running: ${info.ContainersRunning}`,
    ' Paused: 0',
    ` Stopped: ${info.ContainersStopped}`,
    `Images: ${info.Images}`,
    `Storage Driver: ${info.Driver}`,
    ...info.DriverStatus.map(([k, v]) => ` ${k}: ${v}`),
    `Data Root: ${info.DockerRootDir}`,
    '',
  ].join('\n')
}

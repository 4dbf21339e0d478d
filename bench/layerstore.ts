/**
 * Registering the layers of a real ~200 MiB image: the debootstrap bookworm
 * root filesystem split in three layers (everything but /usr/share and
 * /var; /usr/share; /var), side by side with
 * - `docker load` of the same layers as a docker-archive, on a private
 *   dockerd 20.10 (overlay2), the image removed between runs;
 * - `containers-storage import-layer` of the three tars, chained (overlay).
 *
 * strata registers the three tars in its own process (register-image.ts:
 * Store.open, layers.register with the config's diffIDs, images.create, a
 * tag) into a fresh overlay2 data root each run: what `strata load` will
 * do, minus reading the archive (docker load reads and unpacks the archive
 * first). Process start is timed on every side.
 * Everything on the same filesystem, `sync` before each run (not timed).
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startDockerd } from '../test/helpers/dockerd.js'
import { run } from '../test/helpers/peers.js'
import { benchContext, debianImage } from './debian-image.js'
import { compare, sh, type CaseResult } from './harness.js'

const REGISTER_IMAGE = fileURLToPath(new URL('./register-image.js', import.meta.url))

export async function layerstoreBench(work: string, log: (m: string) => void): Promise<CaseResult[]> {
  const { archive, layerFiles, diffIds, configFile, sizes } = await debianImage(work, log)

  const cleanups: Array<() => Promise<void>> = []
  try {
    const dockerd = await startDockerd(benchContext(cleanups, log), { storageDriver: 'overlay2', dataRoot: join(work, 'dockerd') })
    const strataRoot = join(work, 'strata')
    const csFlags = ['--graph', join(work, 'cs', 'graph'), '--run', join(work, 'cs', 'run'), '--storage-driver', 'overlay']
    const csEnv = { ...process.env }
    delete csEnv.STORAGE_DRIVER
    delete csEnv.STORAGE_OPTS
    const cs = (...args: string[]): Promise<unknown> => run('containers-storage', [...csFlags, ...args], { env: csEnv })

    const job = JSON.stringify({ layers: layerFiles, diffIds, config: configFile, tag: 'bench:latest' })
    const strata = {
      name: 'strata (1 process: register 3 layers + image + tag)',
      prepare: async () => {
        rmSync(strataRoot, { recursive: true, force: true })
        await sh('sync')
      },
      run: async () => {
        await run(process.execPath, [REGISTER_IMAGE, strataRoot, job])
      },
    }
    const docker = {
      name: 'docker load (dockerd 20.10, overlay2)',
      prepare: async () => {
        await dockerd.docker(['rmi', '-f', 'bench:latest']).catch(() => {})
        await sh('sync')
      },
      run: async () => {
        await dockerd.docker(['load', '-q', '-i', archive])
      },
    }
    const containersStorage = {
      name: 'containers-storage import-layer ×3 (overlay)',
      prepare: async () => {
        await cs('wipe').catch(() => {})
        await sh('sync')
      },
      run: async () => {
        let parent: string | undefined
        for (const [i, file] of layerFiles.entries()) {
          const id = `bench-l${i}-${Date.now()}`
          await cs('import-layer', '--id', id, '--file', file, ...(parent === undefined ? [] : [parent]))
          parent = id
        }
      },
    }
    log('registering: strata vs docker load vs containers-storage')
    const result = await compare(`register a 3-layer image (${sizes.join(' + ')}), median of 5`, strata, [docker, containersStorage], 5)
    await cs('wipe').catch(() => {})
    await cs('shutdown', '-f').catch(() => {})
    rmSync(strataRoot, { recursive: true, force: true })
    return [result]
  } finally {
    for (const fn of cleanups.reverse()) await fn()
  }
}

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
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { TestContext } from 'node:test'
import { sha256Of, type Digest } from '../src/digest/index.js'
import { debootstrapTar } from '../test/helpers/debootstrap.js'
import { startDockerd } from '../test/helpers/dockerd.js'
import { run } from '../test/helpers/peers.js'
import { compare, sh, type CaseResult } from './harness.js'

const REGISTER_IMAGE = fileURLToPath(new URL('./register-image.js', import.meta.url))
const TAR_CREATE = '--format=posix --xattrs --xattrs-include=* --numeric-owner'

/** Just enough of node:test's context for startDockerd outside a test: cleanups run at the end of the bench. */
function benchContext(cleanups: Array<() => Promise<void>>, log: (m: string) => void): TestContext {
  return {
    after: (fn: () => Promise<void>) => void cleanups.push(fn),
    diagnostic: (m: string) => log(m),
    skip: (m: string) => {
      throw new Error(`bench needs ${m}`)
    },
  } as unknown as TestContext
}

export async function layerstoreBench(work: string, log: (m: string) => void): Promise<CaseResult[]> {
  const source = await debootstrapTar(log)
  log('splitting the rootfs into 3 layers')
  const rootfs = join(work, 'rootfs')
  mkdirSync(rootfs)
  await sh(`tar --xattrs --xattrs-include='*' --numeric-owner -xpf ${source} -C ${rootfs}`)
  const archiveDir = join(work, 'archive')
  const layerFiles: string[] = []
  const splits = [`--exclude=./usr/share --exclude=./var .`, `./usr/share`, `./var`]
  for (const [i, what] of splits.entries()) {
    mkdirSync(join(archiveDir, `l${i}`), { recursive: true })
    const file = join(archiveDir, `l${i}`, 'layer.tar')
    await sh(`tar ${TAR_CREATE} -C ${rootfs} -cf ${file} ${what}`)
    layerFiles.push(file)
  }
  rmSync(rootfs, { recursive: true, force: true })
  const diffIds: Digest[] = layerFiles.map((f) => sha256Of(readFileSync(f)))
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/bin/bash'] },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: splits.map((s) => ({ created_by: `tar ${s}` })),
    }),
  )
  const imageId = sha256Of(config)
  const configFile = join(archiveDir, `${imageId.slice(7)}.json`)
  writeFileSync(configFile, config)
  writeFileSync(join(archiveDir, 'manifest.json'), JSON.stringify([{ Config: `${imageId.slice(7)}.json`, RepoTags: ['bench:latest'], Layers: layerFiles.map((_, i) => `l${i}/layer.tar`) }]))
  const archive = join(work, 'image.tar')
  await sh(`tar -C ${archiveDir} -cf ${archive} manifest.json ${imageId.slice(7)}.json l0 l1 l2 && cat ${archive} > /dev/null`)
  const sizes = layerFiles.map((f) => `${(readFileSync(f).length / (1 << 20)).toFixed(0)} MiB`)
  log(`layers: ${sizes.join(', ')}`)

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

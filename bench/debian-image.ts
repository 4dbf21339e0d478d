/**
 * The benchmarks' ~200 MiB image: the debootstrap bookworm root filesystem
 * split in three layers (everything but /usr/share and /var; /usr/share;
 * /var), as GNU tar writes them, with a config naming their diffIDs, laid
 * out as a docker-archive (docker 20.10's manifest.json) both as a
 * directory and as one tar. Built once per bench run.
 */
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { sha256Of, type Digest } from '../src/digest/index.js'
import { debootstrapTar } from '../test/helpers/debootstrap.js'
import { sh } from './harness.js'

const TAR_CREATE = '--format=posix --xattrs --xattrs-include=* --numeric-owner'

export interface DebianImage {
  /** The docker-archive tar. */
  archive: string
  /** The layer tars, base first. */
  layerFiles: string[]
  diffIds: Digest[]
  /** The config JSON file. */
  configFile: string
  imageId: Digest
  tag: string
  /** Each layer's size, "68 MiB"-style, base first. */
  sizes: string[]
}

export async function debianImage(work: string, log: (m: string) => void, tag = 'bench:latest'): Promise<DebianImage> {
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
  writeFileSync(join(archiveDir, 'manifest.json'), JSON.stringify([{ Config: `${imageId.slice(7)}.json`, RepoTags: [tag], Layers: layerFiles.map((_, i) => `l${i}/layer.tar`) }]))
  const archive = join(work, 'image.tar')
  await sh(`tar -C ${archiveDir} -cf ${archive} manifest.json ${imageId.slice(7)}.json l0 l1 l2 && cat ${archive} > /dev/null`)
  const sizes = layerFiles.map((f) => `${(statSync(f).size / (1 << 20)).toFixed(0)} MiB`)
  log(`layers: ${sizes.join(', ')}`)
  return { archive, layerFiles, diffIds, configFile, imageId, tag, sizes }
}

/** Just enough of node:test's context for the test helpers (startDockerd, ...) outside a test: cleanups run at the end of the bench. */
export function benchContext(cleanups: Array<() => Promise<void> | void>, log: (m: string) => void): TestContext {
  return {
    after: (fn: () => Promise<void> | void) => void cleanups.push(fn),
    diagnostic: (m: string) => log(m),
    skip: (m: string) => {
      throw new Error(`bench needs ${m}`)
    },
  } as unknown as TestContext
}

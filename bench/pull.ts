/**
 * Pulling the ~200 MiB 3-layer debootstrap image (debian-image.ts) from the
 * real distribution registry on 127.0.0.1, where skopeo pushed it (layers
 * gzip'd, as every registry push does), side by side:
 * - `strata pull` into a fresh overlay2 data root;
 * - `docker pull` on a private dockerd 20.10 (overlay2), the image
 *   removed between runs;
 * - `podman pull` and `skopeo copy docker:// → containers-storage:` into
 *   private containers-storage roots (overlay), wiped between runs.
 * Every contender is one CLI process; `sync` before each run (not timed).
 */
import { mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { MNT_DETACH, umount2 } from '../src/sys/index.js'
import { mountsAtOrUnder, startDockerd } from '../test/helpers/dockerd.js'
import { run } from '../test/helpers/peers.js'
import { push, startRegistry } from '../test/helpers/registry.js'
import { benchContext, debianImage } from './debian-image.js'
import { compare, sh, type CaseResult, type Contender, STRATA_CLI } from './harness.js'
import { privateStorage } from './peer-stores.js'

const CLI = STRATA_CLI

/** The same pull through the strata named by STRATA_BENCH_BASELINE, when set. */
function baselineContenders(ref: string, root: string): Contender[] {
  const cli = process.env.STRATA_BENCH_BASELINE
  if (cli === undefined || cli === '') return []
  return [
    {
      name: `strata pull, baseline build (${cli})`,
      prepare: async () => {
        for (const m of mountsAtOrUnder([root]).reverse()) umount2(m, MNT_DETACH)
        rmSync(root, { recursive: true, force: true })
        await sh('sync')
      },
      run: async () => void (await run(process.execPath, [cli, '--root', root, '-s', 'overlay2', 'pull', '-q', ref])),
    },
  ]
}

export async function pullBench(work: string, log: (m: string) => void): Promise<CaseResult[]> {
  const image = await debianImage(work, log)
  const cleanups: Array<() => Promise<void> | void> = []
  const strataRoot = join(work, 'strata')
  try {
    const ctx = benchContext(cleanups, log)
    const registryDir = join(work, 'registry')
    mkdirSync(registryDir)
    const host = await startRegistry(ctx, registryDir)
    const ref = `${host}/bench/debian:latest`
    log(`pushing the image to ${ref} with skopeo`)
    const tmp = join(work, 'tmp')
    mkdirSync(tmp)
    await push(image.archive, ref, tmp)

    const dockerd = await startDockerd(ctx, { storageDriver: 'overlay2', dataRoot: join(work, 'dockerd') })
    const podmanStore = privateStorage(join(work, 'podman'))
    cleanups.push(() => podmanStore.wipe())
    const skopeoStore = privateStorage(join(work, 'skopeo'))
    cleanups.push(() => skopeoStore.wipe())
    cleanups.push(() => {
      for (const m of mountsAtOrUnder([strataRoot, `${strataRoot}-baseline`]).reverse()) umount2(m, MNT_DETACH)
    })

    log('pull: strata vs docker vs podman vs skopeo')
    const result = await compare(
      `pull a 3-layer image (${image.sizes.join(' + ')} as tars, gzip'd in the registry) from a local registry, median of 5`,
      {
        name: 'strata pull (overlay2)',
        prepare: async () => {
          for (const m of mountsAtOrUnder([strataRoot]).reverse()) umount2(m, MNT_DETACH)
          rmSync(strataRoot, { recursive: true, force: true })
          await sh('sync')
        },
        run: async () => void (await run(process.execPath, [CLI, '--root', strataRoot, '-s', 'overlay2', 'pull', '-q', ref])),
      },
      [
        // STRATA_BENCH_BASELINE=path/to/strata.js: another build of strata (the one before a change) in the same run.
        ...baselineContenders(ref, `${strataRoot}-baseline`),
        {
          name: 'docker pull (dockerd 20.10, overlay2)',
          prepare: async () => {
            await dockerd.docker(['rmi', '-f', ref]).catch(() => {})
            await sh('sync')
          },
          run: async () => void (await dockerd.docker(['pull', '-q', ref])),
        },
        {
          name: 'podman pull (overlay)',
          prepare: () => podmanStore.fresh(),
          run: async () => void (await podmanStore.podman('pull', '-q', '--tls-verify=false', ref)),
        },
        {
          name: 'skopeo copy docker:// → containers-storage: (overlay)',
          prepare: () => skopeoStore.fresh(),
          run: async () => void (await skopeoStore.skopeoCopy(`docker://${ref}`, 'bench/debian:latest', ['--src-tls-verify=false'])),
        },
      ],
      5,
    )
    return [result]
  } finally {
    for (const fn of cleanups.reverse()) await fn()
  }
}

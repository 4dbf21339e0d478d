/**
 * `strata load` and `strata save` of a real ~200 MiB docker-archive (the
 * 3-layer debootstrap image of debian-image.ts), side by side with
 * - `docker load` / `docker save` on a private dockerd 20.10 (overlay2);
 * - `podman load` into a private containers-storage root (overlay);
 * - `skopeo copy docker-archive: containers-storage:` into another one.
 *
 * Every contender is its own CLI process reading the same archive file,
 * into a store emptied before each run (strata: a fresh data root;
 * docker: the image removed; podman/skopeo: their storage wiped), all on
 * the same filesystem, `sync` before each run (not timed). Save writes
 * the loaded image to a new file each time.
 *
 * Then the same load into tmpfs (/dev/shm), where the disk and its
 * writeback are out of the picture and what is left is each tool's own
 * work: strata's data root and a second dockerd's on tmpfs, next to GNU
 * tar -x of the 3 layer tars into a tmpfs dir (the floor).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { mountsAtOrUnder, startDockerd } from '../test/helpers/dockerd.js'
import { run } from '../test/helpers/peers.js'
import { MNT_DETACH, umount2 } from '../src/sys/index.js'
import { benchContext, debianImage, type DebianImage } from './debian-image.js'
import { privateStorage } from './peer-stores.js'
import { compare, sh, type CaseResult, type Contender, STRATA_CLI } from './harness.js'

const CLI = STRATA_CLI

export async function loadBench(work: string, log: (m: string) => void): Promise<CaseResult[]> {
  const image = await debianImage(work, log)
  const sizeNote = image.sizes.join(' + ')
  const cleanups: Array<() => Promise<void> | void> = []
  try {
    // STRATA_BENCH_LOAD=tmpfs: only the tmpfs case (strata, docker, GNU tar), to iterate on it; not for --write, which would drop the other rows.
    if (process.env.STRATA_BENCH_LOAD === 'tmpfs') return [await tmpfsLoad(image, work, cleanups, log)]
    const dockerd = await startDockerd(benchContext(cleanups, log), { storageDriver: 'overlay2', dataRoot: join(work, 'dockerd') })
    const strataRoot = join(work, 'strata')
    const strata = (...args: string[]): Promise<unknown> => run(process.execPath, [CLI, '--root', strataRoot, '-s', 'overlay2', ...args])
    // STRATA_BENCH_BASELINE=path/to/strata.js: another build of strata (the one before a change) in the same run, on its own root.
    const baseline = process.env.STRATA_BENCH_BASELINE ?? ''
    const baselineRoot = join(work, 'strata-baseline')
    const baselineStrata = (...args: string[]): Promise<unknown> => run(process.execPath, [baseline, '--root', baselineRoot, '-s', 'overlay2', ...args])
    const podmanStorage = privateStorage(join(work, 'podman'))
    cleanups.push(() => podmanStorage.wipe())
    const skopeoStorage = privateStorage(join(work, 'skopeo'))
    const tarDir = join(work, 'tar-x')
    cleanups.push(() => skopeoStorage.wipe())

    const loads: [Contender, Contender[]] = [
      {
        name: 'strata load (overlay2)',
        prepare: async () => {
          for (const m of mountsAtOrUnder([strataRoot])) umount2(m, MNT_DETACH)
          rmSync(strataRoot, { recursive: true, force: true })
          await sh('sync')
        },
        run: async () => void (await strata('load', '-q', '-i', image.archive)),
      },
      [
        ...(baseline === ''
          ? []
          : [
              {
                name: `strata load, baseline build (${baseline})`,
                prepare: async () => {
                  for (const m of mountsAtOrUnder([baselineRoot])) umount2(m, MNT_DETACH)
                  rmSync(baselineRoot, { recursive: true, force: true })
                  await sh('sync')
                },
                run: async () => void (await baselineStrata('load', '-q', '-i', image.archive)),
              },
            ]),
        {
          name: 'docker load (dockerd 20.10, overlay2)',
          prepare: async () => {
            await dockerd.docker(['rmi', '-f', image.tag]).catch(() => {})
            await sh('sync')
          },
          run: async () => void (await dockerd.docker(['load', '-q', '-i', image.archive])),
        },
        {
          name: 'podman load (overlay)',
          prepare: () => podmanStorage.fresh(),
          run: async () => void (await podmanStorage.podman('load', '-q', '-i', image.archive)),
        },
        {
          name: 'skopeo copy docker-archive: → containers-storage: (overlay)',
          prepare: () => skopeoStorage.fresh(),
          run: async () => void (await skopeoStorage.skopeoCopy(`docker-archive:${image.archive}`, image.tag)),
        },
        {
          // Not a load: the floor any of them has on this disk (no hashing, no metadata, one process).
          name: 'floor: GNU tar -x of the 3 layer tars into one dir',
          prepare: async () => {
            rmSync(tarDir, { recursive: true, force: true })
            mkdirSync(tarDir)
            await sh('sync')
          },
          run: async () => sh(image.layerFiles.map((f) => `tar --numeric-owner -xpf ${f} -C ${tarDir}`).join(' && ')),
        },
      ],
    ]
    log('load: strata vs docker vs podman vs skopeo')
    const loadResult = await compare(`load a 3-layer docker-archive (${sizeNote}), median of 5`, loads[0], loads[1], 5)

    // Save: both stores hold the image now (the last load of each).
    const out = join(work, 'saved.tar')
    const fresh = async (): Promise<void> => {
      rmSync(out, { force: true })
      await sh('sync')
    }
    log('save: strata vs docker')
    const saveResult = await compare(
      `save that image to a docker-archive file, median of 5`,
      { name: 'strata save', prepare: fresh, run: async () => void (await strata('save', '-o', out, image.tag)) },
      [
        ...(baseline === '' ? [] : [{ name: `strata save, baseline build (${baseline})`, prepare: fresh, run: async () => void (await baselineStrata('save', '-o', out, image.tag)) }]),
        { name: 'docker save (dockerd 20.10)', prepare: fresh, run: async () => void (await dockerd.docker(['save', '-o', out, image.tag])) },
      ],
      5,
    )
    return [loadResult, saveResult, await tmpfsLoad(image, work, cleanups, log)]
  } finally {
    for (const fn of cleanups.reverse()) await fn()
    for (const m of mountsAtOrUnder([join(work, 'strata'), join(work, 'strata-baseline')])) umount2(m, MNT_DETACH)
  }
}

/** strata load into a data root on tmpfs, next to docker load (data root on tmpfs too) and GNU tar -x into a tmpfs dir. */
async function tmpfsLoad(image: DebianImage, work: string, cleanups: Array<() => Promise<void> | void>, log: (m: string) => void): Promise<CaseResult> {
  const shm = mkdtempSync('/dev/shm/strata-bench-load-')
  const strataRoot = join(shm, 'strata')
  const baselineRoot = join(shm, 'strata-baseline')
  const baseline = process.env.STRATA_BENCH_BASELINE ?? ''
  const tarDir = join(shm, 'tar-x')
  cleanups.push(() => {
    for (const m of mountsAtOrUnder([strataRoot, baselineRoot])) umount2(m, MNT_DETACH)
    rmSync(shm, { recursive: true, force: true })
  })
  log('starting a dockerd with its data root in tmpfs')
  const dockerd = await startDockerd(benchContext(cleanups, log), { storageDriver: 'overlay2', dataRoot: join(shm, 'dockerd') })
  log('load into tmpfs: strata vs docker vs GNU tar')
  return compare(
    `load the same archive into tmpfs (data roots in /dev/shm), median of 5`,
    {
      name: 'strata load (overlay2, tmpfs)',
      prepare: async () => {
        for (const m of mountsAtOrUnder([strataRoot])) umount2(m, MNT_DETACH)
        rmSync(strataRoot, { recursive: true, force: true })
      },
      run: async () => void (await run(process.execPath, [CLI, '--root', strataRoot, '-s', 'overlay2', 'load', '-q', '-i', image.archive])),
    },
    [
      ...(baseline === ''
        ? []
        : [
            {
              name: `strata load, baseline build (${baseline}), tmpfs`,
              prepare: async () => {
                for (const m of mountsAtOrUnder([baselineRoot])) umount2(m, MNT_DETACH)
                rmSync(baselineRoot, { recursive: true, force: true })
              },
              run: async () => void (await run(process.execPath, [baseline, '--root', baselineRoot, '-s', 'overlay2', 'load', '-q', '-i', image.archive])),
            },
          ]),
      {
        name: 'docker load (dockerd 20.10, overlay2, tmpfs)',
        prepare: async () => void (await dockerd.docker(['rmi', '-f', image.tag]).catch(() => {})),
        run: async () => void (await dockerd.docker(['load', '-q', '-i', image.archive])),
      },
      {
        name: 'floor: GNU tar -x of the 3 layer tars into one tmpfs dir',
        prepare: async () => {
          rmSync(tarDir, { recursive: true, force: true })
          mkdirSync(tarDir)
        },
        run: async () => sh(image.layerFiles.map((f) => `tar --numeric-owner -xpf ${f} -C ${tarDir}`).join(' && ')),
      },
    ],
    5,
  )
}

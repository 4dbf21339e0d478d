/**
 * `strata migrate` of an aufs data root holding the ~200 MiB 3-layer
 * Debian image (debian-image.ts) to overlay2, side by side with what users
 * of Docker's aufs driver had instead: `docker save` of the image from the
 * old daemon piped into `docker load` on a daemon with the new driver.
 *
 * - strata: the CLI on a copy of the aufs root (the copy is made before
 *   each run, not timed); the migration reads every layer through its
 *   tar-split, applies it to overlay2, rebuilds it again from overlay2 and
 *   checks both against the diffID, then switches the trees (the aufs
 *   trees kept, as without --prune-source).
 * - docker: two private dockerd 20.10; this machine's kernel has no aufs,
 *   so the daemon saving the image runs overlay2 too (its save reads each
 *   layer through tar-split as an aufs daemon's would); the loading one
 *   (overlay2) has the image removed before each run.
 *
 * Both end with the image in an overlay2 store under its ID. Containers
 * are not part of it: docker save/load cannot move them at all.
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { MNT_DETACH, umount2 } from '../src/sys/index.js'
import { DOCKER, mountsAtOrUnder, startDockerd } from '../test/helpers/dockerd.js'
import { run } from '../test/helpers/peers.js'
import { benchContext, debianImage } from './debian-image.js'
import { compare, sh, type CaseResult, STRATA_CLI } from './harness.js'

const CLI = STRATA_CLI

export async function migrateBench(work: string, log: (m: string) => void): Promise<CaseResult[]> {
  const image = await debianImage(work, log)
  const cleanups: Array<() => Promise<void> | void> = []
  const pristine = join(work, 'aufs-root')
  const copy = join(work, 'migrating')
  const unmountUnder = (dir: string): void => {
    for (const m of mountsAtOrUnder([dir])) umount2(m, MNT_DETACH)
  }
  try {
    log('building the aufs root (strata -s aufs load)')
    await run(process.execPath, [CLI, '--root', pristine, '-s', 'aufs', 'load', '-q', '-i', image.archive])
    const ctx = benchContext(cleanups, log)
    const from = await startDockerd(ctx, { storageDriver: 'overlay2', dataRoot: join(work, 'dockerd-old') })
    const to = await startDockerd(ctx, { storageDriver: 'overlay2', dataRoot: join(work, 'dockerd-new') })
    await from.docker(['load', '-q', '-i', image.archive])

    log('migrate: strata migrate vs docker save | docker load')
    const result = await compare(
      `move the 3-layer image (${image.sizes.join(' + ')}) from aufs to overlay2, median of 3`,
      {
        name: 'strata migrate --to overlay2 (aufs root, every layer verified twice)',
        prepare: async () => {
          unmountUnder(copy)
          rmSync(copy, { recursive: true, force: true })
          await sh(`cp -a ${pristine} ${copy} && sync`)
        },
        run: async () => void (await run(process.execPath, [CLI, '--root', copy, 'migrate', '--to', 'overlay2', '-q'])),
      },
      [
        {
          name: 'docker save piped into docker load (dockerd 20.10 → dockerd 20.10 on overlay2)',
          prepare: async () => {
            await to.docker(['rmi', '-f', image.tag]).catch(() => {})
            await sh('sync')
          },
          run: () => sh(`${DOCKER} -H ${from.host} save ${image.tag} | ${DOCKER} -H ${to.host} load -q`),
        },
      ],
      3,
    )
    return [result]
  } finally {
    for (const fn of cleanups.reverse()) await fn()
    unmountUnder(copy)
    unmountUnder(pristine)
  }
}

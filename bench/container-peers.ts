/**
 * The three container engines the container benches compare, each with
 * its own private store under `work`: strata's CLI (the bundle, overlay2),
 * dockerd 20.10 (overlay2) and podman (overlay), the given image archives
 * loaded into each. `removeAll` removes every container of all three
 * (untimed, between runs); `cleanups` stop dockerd, unmount and wipe.
 */
import { join } from 'node:path'
import { MNT_DETACH, umount2 } from '../src/sys/index.js'
import { mountsAtOrUnder, startDockerd } from '../test/helpers/dockerd.js'
import { run } from '../test/helpers/peers.js'
import { benchContext } from './debian-image.js'
import { sh, STRATA_CLI } from './harness.js'
import { privateStorage } from './peer-stores.js'

export interface ContainerPeers {
  strata: (...args: string[]) => Promise<string>
  docker: (...args: string[]) => Promise<string>
  podman: (...args: string[]) => Promise<string>
  removeAll: () => Promise<void>
  /** dockerd's socket (`unix://...`), for a docker command run through a shell. */
  dockerHost: string
}

/** Starts the peers and loads `archives` into each; what to undo is pushed on `cleanups`. */
export async function containerPeers(work: string, archives: string[], cleanups: Array<() => Promise<void> | void>, log: (m: string) => void): Promise<ContainerPeers> {
  const strataRoot = join(work, 'strata')
  const dockerd = await startDockerd(benchContext(cleanups, log), { storageDriver: 'overlay2', dataRoot: join(work, 'dockerd') })
  const docker = async (...args: string[]): Promise<string> => (await dockerd.docker(args)).stdout.toString().trim()
  const strata = async (...args: string[]): Promise<string> => (await run(process.execPath, [STRATA_CLI, '--root', strataRoot, '-s', 'overlay2', ...args])).stdout.toString().trim()
  const store = privateStorage(join(work, 'podman'))
  cleanups.push(() => store.wipe())
  const podman = async (...args: string[]): Promise<string> => (await store.podman(...args)).stdout.toString().trim()
  cleanups.push(async () => {
    for (const m of mountsAtOrUnder([strataRoot]).reverse()) umount2(m, MNT_DETACH)
  })
  log('loading the images into strata, dockerd and podman')
  for (const archive of archives) {
    await strata('load', '-q', '-i', archive)
    await docker('load', '-q', '-i', archive)
    await podman('load', '-q', '-i', archive)
  }
  const removeAll = async (): Promise<void> => {
    for (const id of (await strata('ps', '-aq')).split('\n').filter(Boolean)) await strata('rm', '-f', id)
    const ids = (await docker('ps', '-aq')).split('\n').filter(Boolean)
    if (ids.length > 0) await docker('rm', '-f', ...ids)
    await podman('rm', '-af')
    await sh('sync')
  }
  return { strata, docker, podman, removeAll, dockerHost: dockerd.host }
}

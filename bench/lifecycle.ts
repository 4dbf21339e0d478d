/**
 * The container lifecycle on the ~200 MiB debootstrap image
 * (debian-image.ts), strata's CLI side by side with dockerd 20.10
 * (overlay2) and podman (overlay), each with the image in its own private
 * store:
 *
 * - `run -d` then `stop`: a container started in the background (strata:
 *   its monitor process; dockerd: containerd's shim; podman: conmon) whose
 *   process ends on SIGTERM, then stopped: the whole cycle, both commands
 *   timed, with no network (`--network none` for the peers, strata's only
 *   mode);
 * - `logs` of a container whose json-file log holds 100 MiB (one million
 *   ~100-byte lines written by the container itself), output to /dev/null:
 *   `strata logs` vs `docker logs` (podman's k8s-file log is another
 *   format: not compared).
 *
 * Every contender is a CLI process, timed whole; containers are removed
 * between runs (untimed).
 */
import { containerPeers } from './container-peers.js'
import { debianImage } from './debian-image.js'
import { compare, sh, STRATA_CLI, type CaseResult } from './harness.js'
import { join } from 'node:path'

/** Ends on SIGTERM at once (a shell as PID 1 ignores it otherwise), so stop does not wait out its timeout. */
const SERVICE = ['sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait']
/** ~100 MiB of output: a million lines of 100 bytes. */
const CHATTY = ['sh', '-c', 'yes "$(printf "%099d" 0)" | head -n 1000000']

export async function lifecycleBench(work: string, log: (m: string) => void): Promise<CaseResult[]> {
  const image = await debianImage(work, log)
  const cleanups: Array<() => Promise<void> | void> = []
  try {
    const { strata, docker, podman, removeAll, dockerHost } = await containerPeers(work, [image.archive], cleanups, log)
    const results: CaseResult[] = []
    log('run -d + stop')
    results.push(
      await compare(
        'run -d, then stop, a container that ends on SIGTERM (debian 201 MiB), median of 7',
        { name: 'strata run -d + strata stop', prepare: removeAll, run: async () => void (await strata('stop', await strata('run', '-d', image.tag, ...SERVICE))) },
        [
          { name: 'docker run -d + docker stop (dockerd 20.10)', prepare: removeAll, run: async () => void (await docker('stop', await docker('run', '-d', '--network', 'none', image.tag, ...SERVICE))) },
          { name: 'podman run -d + podman stop (conmon)', prepare: removeAll, run: async () => void (await podman('stop', await podman('run', '-d', '--network', 'none', image.tag, ...SERVICE))) },
        ],
        7,
      ),
    )

    log('logs of a 100 MiB log')
    await removeAll()
    await strata('wait', await strata('run', '-d', '--name', 'chatty', image.tag, ...CHATTY))
    await docker('wait', await docker('run', '-d', '--name', 'chatty', '--network', 'none', image.tag, ...CHATTY))
    const root = join(work, 'strata')
    results.push(
      await compare(
        'logs of a container whose json-file log holds 100 MiB (1M lines), to /dev/null, median of 3',
        { name: 'strata logs', run: () => sh(`${process.execPath} ${STRATA_CLI} --root ${root} -s overlay2 logs chatty > /dev/null 2>&1`) },
        [{ name: 'docker logs (dockerd 20.10)', run: () => sh(`docker -H ${dockerHost} logs chatty > /dev/null 2>&1`) }],
        3,
      ),
    )
    await removeAll()
    return results
  } finally {
    for (const fn of cleanups.reverse()) await fn()
  }
}

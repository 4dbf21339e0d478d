/**
 * Private stores for the benchmarks' peers, so nothing in /var/lib is read
 * or written: a containers-storage (overlay) root for podman or skopeo,
 * with its storage.conf, and podman on it.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { MNT_DETACH, umount2 } from '../src/sys/index.js'
import { mountsAtOrUnder } from '../test/helpers/dockerd.js'
import { run, type RunResult } from '../test/helpers/peers.js'

export interface PrivateStorage {
  /** Environment naming the storage.conf (and a private TMPDIR). */
  env: NodeJS.ProcessEnv
  graph: string
  runroot: string
  /** Unmounts what is mounted under the store and removes it. */
  wipe(): void
  /** wipe(), then `sync`: a benchmark's untimed prepare step. */
  fresh(): Promise<void>
  /** `podman` with this store's flags. */
  podman(...args: string[]): Promise<RunResult>
  /** `skopeo copy SOURCE containers-storage:[overlay@this store]NAME`, with `flags` before the references. */
  skopeoCopy(source: string, name: string, flags?: string[]): Promise<RunResult>
}

export function privateStorage(dir: string): PrivateStorage {
  const graph = join(dir, 'graph')
  const runroot = join(dir, 'run')
  const tmp = join(dir, 'tmp')
  mkdirSync(tmp, { recursive: true })
  const conf = join(dir, 'storage.conf')
  writeFileSync(conf, `[storage]\ndriver = "overlay"\nrunroot = "${runroot}"\ngraphroot = "${graph}"\n`)
  const env = { ...process.env, CONTAINERS_STORAGE_CONF: conf, TMPDIR: tmp }
  const wipe = (): void => {
    for (const m of mountsAtOrUnder([graph, runroot]).reverse()) umount2(m, MNT_DETACH)
    rmSync(graph, { recursive: true, force: true })
    rmSync(runroot, { recursive: true, force: true })
  }
  return {
    env,
    graph,
    runroot,
    wipe,
    fresh: async () => {
      wipe()
      await run('sync', [])
    },
    skopeoCopy: (source, name, flags = []) =>
      run('skopeo', ['--insecure-policy', 'copy', '-q', ...flags, source, `containers-storage:[overlay@${graph}+${runroot}]${name}`], { env }),
    podman: (...args) => run('podman', ['--root', graph, '--runroot', runroot, '--storage-driver', 'overlay', '--events-backend', 'none', ...args], { env }),
  }
}

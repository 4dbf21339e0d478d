/**
 * The graph drivers against containers-storage (the Go library podman and
 * CRI-O store images with, through its CLI) on the same images:
 *
 * - "create + mount": a container (read-write) layer on an image's base
 *   layer, then mounting it (strata: createReadWrite + get; peer:
 *   `create-layer` + `mount`). For overlay2 on a busybox image (~2 MiB)
 *   and on the Debian rootfs (~201 MiB): the two should cost the same,
 *   overlay2's create + mount being independent of the image size.
 * - "diff after a 1-file change": the container layer's diff tar, read to
 *   the end, after one file was changed through its mount (strata:
 *   driver.diff; peer: `diff -u`). overlay2's native diff reads only the
 *   upper dir; vfs and btrfs compare the two full trees (naive diff, in
 *   both strata and containers-storage).
 *
 * Drivers: overlay2 (peer: containers-storage "overlay", the same on-disk
 * scheme) and vfs on the work dir's ext4, btrfs on a loop btrfs filesystem.
 * Base layers are imported once, untimed. The peer is a CLI, so each of its
 * steps is a process start plus a store open (locks, layers.json, driver
 * init); the `containers-storage version` rows measure exactly that floor.
 *
 * No dockerd peer: dockerd offers no operation on bare layers. `docker
 * create` also makes the -init layer and mounts nothing until start, and
 * `docker diff` lists changes without producing the tar, so the times would
 * measure other work (test/helpers/dockerd.ts appeared only after this
 * benchmark was written; it could drive such a comparison later).
 *
 * strata's vfs and btrfs diffs compare the content of every regular file
 * whose metadata matches (changesNaive's compareContent, on by default);
 * containers-storage, like moby, compares metadata only. The naive diff
 * rows measure that difference as well as the walk.
 */
import { randomBytes } from 'node:crypto'
import { createReadStream, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { appendFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { btrfsFactory, overlay2Factory, vfsFactory, type GraphDriver } from '../src/graphdriver/index.js'
import { MNT_DETACH, umount2 } from '../src/sys/index.js'
import { debootstrapTar } from '../test/helpers/debootstrap.js'
import { makeBusyboxRootfs } from '../test/helpers/fixtures.js'
import { createLoopFs, type LoopFs } from '../test/helpers/loopfs.js'
import { findOnPath, run } from '../test/helpers/peers.js'
import { compare, sh, type CaseResult, type Contender } from './harness.js'

const CS = 'containers-storage'
/** The file the diff cases change: a regular file in every Debian rootfs. */
const CHANGED = 'etc/debian_version'
/** Runs per case: many for the millisecond operations, fewer where a case copies the whole image. */
const FAST_RUNS = 15
const COPY_RUNS = 5
const NAIVE_DIFF_RUNS = 7

type Log = (m: string) => void

interface Image {
  name: string
  tar: string
  bytes: number
}

const newId = (): string => randomBytes(32).toString('hex')
const mib = (bytes: number): string => `${(bytes / (1 << 20)).toFixed(bytes < 10 << 20 ? 1 : 0)} MiB`

/** Mount points (from /proc/self/mountinfo) at or below `dir`, deepest first. */
function mountsUnder(dir: string): string[] {
  const decode = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => decode(l.split(' ')[4] ?? ''))
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length)
}

/** Reads a stream to the end, returning its bytes (the diffs here are a few KiB). */
async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

/** The entries of a tar, by GNU tar, to check both diffs carry the same change. */
async function tarEntries(tar: Buffer): Promise<string[]> {
  const { stdout } = await run('tar', ['-t'], { input: tar })
  return stdout.toString().split('\n').filter((l) => l !== '')
}

/** The environment for containers-storage, without the variables that would override our flags. */
function csEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  delete env.STORAGE_DRIVER
  delete env.STORAGE_OPTS
  return env
}

/** One containers-storage store: its own graph and run roots, one driver. */
class Peer {
  readonly flags: string[]
  readonly bases = new Map<string, string>()
  readonly #env = csEnv()
  constructor(
    readonly driver: 'overlay' | 'vfs' | 'btrfs',
    readonly root: string,
  ) {
    this.flags = ['--graph', join(root, 'graph'), '--run', join(root, 'run'), '--storage-driver', driver]
  }

  async cs(...args: string[]): Promise<Buffer> {
    return (await run(CS, [...this.flags, ...args], { env: this.#env })).stdout
  }

  async importBase(image: Image): Promise<void> {
    const id = newId()
    await this.cs('import-layer', '--id', id, '--file', image.tar)
    this.bases.set(image.name, id)
  }

  /** Removes every layer (wipe unmounts them first), then releases the store (shutdown -f unmounts what is left, overlay's private home mount included). */
  async close(): Promise<void> {
    await this.cs('wipe').catch(() => {})
    await this.cs('shutdown', '-f')
  }
}

/** One strata driver and the base layers imported into it. */
interface Lane {
  driver: GraphDriver
  bases: Map<string, string>
}

async function importBase(lane: Lane, image: Image): Promise<void> {
  const id = newId()
  await lane.driver.create(id, null)
  await lane.driver.applyDiff(id, null, createReadStream(image.tar, { highWaterMark: 1 << 20 }))
  lane.bases.set(image.name, id)
}

/**
 * Finishes a case's result: adds the peer's time minus its process-start
 * floor (peers[0] is the peer, peers[1] the floor; a difference of two
 * medians, labelled derived), and puts the milliseconds the table's
 * seconds-with-two-decimals would round away into the labels.
 */
function finish(r: CaseResult): CaseResult {
  const [peer, floor] = r.peers
  const peers = [...r.peers]
  if (peer !== undefined && floor !== undefined && peer.ms > floor.ms) {
    peers.push({ name: `${peer.name.replace(/ \(\d+ process(es)?\)$/, '')} minus the version floor (derived)`, ms: peer.ms - floor.ms })
  }
  return {
    title: `${r.title} — strata ${r.strata.ms.toFixed(1)} ms`,
    strata: r.strata,
    peers: peers.map((p) => ({ name: `${p.name} (${p.ms.toFixed(1)} ms)`, ms: p.ms })),
  }
}

/**
 * Case "create + mount": a fresh container layer on `image`'s base each
 * run; the previous run's layer is unmounted and removed untimed (prepare),
 * and the last one after the case.
 */
async function createMountCase(title: string, lane: Lane, peer: Peer, image: Image, runs: number): Promise<CaseResult> {
  const base = lane.bases.get(image.name)!
  const peerBase = peer.bases.get(image.name)!
  let strataLayer: { id: string; mounted: boolean } | undefined
  const strataTeardown = async (): Promise<void> => {
    if (strataLayer === undefined) return
    if (strataLayer.mounted) await lane.driver.put(strataLayer.id)
    await lane.driver.remove(strataLayer.id)
    strataLayer = undefined
  }
  let peerLayer: { id: string; mounted: boolean } | undefined
  const peerTeardown = async (): Promise<void> => {
    if (peerLayer === undefined) return
    if (peerLayer.mounted) await peer.cs('unmount', peerLayer.id)
    await peer.cs('delete-layer', peerLayer.id)
    peerLayer = undefined
  }
  const strata: Contender = {
    name: 'strata',
    prepare: async () => {
      await strataTeardown()
      await sh('sync')
    },
    run: async () => {
      strataLayer = { id: newId(), mounted: false }
      await lane.driver.createReadWrite(strataLayer.id, base)
      await lane.driver.get(strataLayer.id)
      strataLayer.mounted = true
    },
  }
  const cs: Contender = {
    name: `containers-storage ${peer.driver}: create-layer + mount (2 processes)`,
    prepare: async () => {
      await peerTeardown()
      await sh('sync')
    },
    run: async () => {
      peerLayer = { id: newId(), mounted: false }
      await peer.cs('create-layer', '--id', peerLayer.id, peerBase)
      await peer.cs('mount', peerLayer.id)
      peerLayer.mounted = true
    },
  }
  const floor: Contender = {
    name: `containers-storage ${peer.driver}: 2× version (process start + store open only)`,
    run: async () => {
      await peer.cs('version')
      await peer.cs('version')
    },
  }
  try {
    return finish(await compare(`${title} (median of ${runs})`, strata, [cs, floor], runs))
  } finally {
    await strataTeardown()
    await peerTeardown()
  }
}

/**
 * Case "diff after a 1-file change": one container layer per side, one
 * file appended to through its mount (untimed), then its diff against the
 * base read to the end, each run.
 */
async function diffCase(title: string, lane: Lane, peer: Peer, image: Image, runs: number, log: Log): Promise<CaseResult> {
  const base = lane.bases.get(image.name)!
  const peerBase = peer.bases.get(image.name)!
  const id = newId()
  const peerId = newId()
  let strataMounted = false
  let peerCreated = false
  let peerMounted = false
  try {
    await lane.driver.createReadWrite(id, base)
    const mnt = await lane.driver.get(id)
    strataMounted = true
    await appendFile(join(mnt, CHANGED), 'changed by the strata benchmark\n')

    await peer.cs('create-layer', '--id', peerId, peerBase)
    peerCreated = true
    const peerMnt = (await peer.cs('mount', peerId)).toString().trim()
    peerMounted = true
    if (!existsSync(join(peerMnt, CHANGED))) throw new Error(`containers-storage mount ${peerId} printed "${peerMnt}", which does not hold ${CHANGED}`)
    await appendFile(join(peerMnt, CHANGED), 'changed by the strata benchmark\n')
    await sh('sync')

    // Untimed check that both diffs are the same small change.
    const ours = await drain(await lane.driver.diff(id, base))
    const theirs = await peer.cs('diff', '-u', peerId)
    log(`${title}: strata diff ${ours.length} B [${(await tarEntries(ours)).join(', ')}]; containers-storage diff ${theirs.length} B [${(await tarEntries(theirs)).join(', ')}]`)

    const strata: Contender = {
      name: 'strata',
      run: async () => {
        const n = (await drain(await lane.driver.diff(id, base))).length
        if (n === 0) throw new Error('strata diff was empty')
      },
    }
    const cs: Contender = {
      name: `containers-storage ${peer.driver}: diff -u (1 process)`,
      run: async () => {
        const n = (await peer.cs('diff', '-u', peerId)).length
        if (n === 0) throw new Error('containers-storage diff was empty')
      },
    }
    const floor: Contender = {
      name: `containers-storage ${peer.driver}: version (process start + store open only)`,
      run: async () => void (await peer.cs('version')),
    }
    return finish(await compare(`${title} (median of ${runs})`, strata, [cs, floor], runs))
  } finally {
    if (strataMounted) await lane.driver.put(id)
    if (await lane.driver.exists(id)) await lane.driver.remove(id)
    if (peerMounted) await peer.cs('unmount', peerId)
    if (peerCreated) await peer.cs('delete-layer', peerId)
  }
}

export async function graphdriverBench(work: string, log: Log): Promise<CaseResult[]> {
  if (findOnPath(CS) === undefined) throw new Error(`${CS} is not installed (apt-get install containers-storage; scripts/install-deps.sh has it)`)
  log('peer: containers-storage only (dockerd has no command for bare layers: create makes an init layer too and nothing mounts before start)')

  const debianTar = await debootstrapTar(log)
  const busyboxRoot = join(work, 'busybox-rootfs')
  const busyboxTar = join(work, 'busybox.tar')
  await makeBusyboxRootfs(busyboxRoot)
  await run('tar', ['--format=posix', '--xattrs', '--xattrs-include=*', '--numeric-owner', '-cf', busyboxTar, '-C', busyboxRoot, '.'])
  rmSync(busyboxRoot, { recursive: true, force: true })
  const debian: Image = { name: 'debian', tar: debianTar, bytes: statSync(debianTar).size }
  const busybox: Image = { name: 'busybox', tar: busyboxTar, bytes: statSync(busyboxTar).size }
  await sh(`cat ${debian.tar} ${busybox.tar} > /dev/null`)

  // Everything to undo, last first; each step runs even if an earlier one failed.
  const undo: Array<{ what: string; fn: () => Promise<void> }> = []
  const roots: string[] = [work]
  const results: CaseResult[] = []
  try {
    // overlay2 / containers-storage overlay, on the work dir's ext4.
    {
      const root = join(work, 'strata-overlay2')
      mkdirSync(root)
      const lane: Lane = { driver: await overlay2Factory.open({ root }), bases: new Map() }
      undo.push({ what: 'strata overlay2 cleanup', fn: () => lane.driver.cleanup() })
      const peer = new Peer('overlay', join(work, 'cs-overlay'))
      undo.push({ what: 'containers-storage overlay shutdown', fn: () => peer.close() })
      log('overlay2: importing the busybox and Debian images (untimed)')
      for (const image of [busybox, debian]) {
        await importBase(lane, image)
        await peer.importBase(image)
      }
      await sh('sync')
      const nativeDiff = (await lane.driver.status()).find(([k]) => k === 'Native Overlay Diff')?.[1]
      const peerStatus = await run(CS, [...peer.flags, 'status'], { env: csEnv() }) // it prints to stderr
      const peerNativeDiff = /Native Overlay Diff: (\S+)/.exec(peerStatus.stdout.toString() + peerStatus.stderr)?.[1]
      log(`overlay2: Native Overlay Diff: strata ${nativeDiff ?? '?'}, containers-storage ${peerNativeDiff ?? '?'}`)
      for (const image of [busybox, debian]) {
        log(`overlay2: create + mount on ${image.name}`)
        results.push(await createMountCase(`overlay2 (ext4): create + mount container layer, ${image.name} image ${mib(image.bytes)}`, lane, peer, image, FAST_RUNS))
      }
      log('overlay2: diff after a 1-file change')
      results.push(await diffCase(`overlay2 (ext4): diff after 1-file change, ${debian.name} image ${mib(debian.bytes)}`, lane, peer, debian, FAST_RUNS, log))
    }

    // vfs on ext4: every container layer is a full copy of the image.
    {
      const root = join(work, 'strata-vfs')
      mkdirSync(root)
      const lane: Lane = { driver: await vfsFactory.open({ root }), bases: new Map() }
      undo.push({ what: 'strata vfs cleanup', fn: () => lane.driver.cleanup() })
      const peer = new Peer('vfs', join(work, 'cs-vfs'))
      undo.push({ what: 'containers-storage vfs shutdown', fn: () => peer.close() })
      log('vfs: importing the Debian image (untimed)')
      await importBase(lane, debian)
      await peer.importBase(debian)
      await sh('sync')
      log('vfs: create + mount')
      results.push(await createMountCase(`vfs (ext4): create + mount container layer, ${debian.name} image ${mib(debian.bytes)}`, lane, peer, debian, COPY_RUNS))
      log('vfs: diff after a 1-file change')
      results.push(await diffCase(`vfs (ext4): diff after 1-file change, ${debian.name} image ${mib(debian.bytes)}`, lane, peer, debian, NAIVE_DIFF_RUNS, log))
    }

    // btrfs on a loop filesystem: container layers are snapshots.
    {
      let loop: LoopFs | undefined = await createLoopFs('btrfs', 4 * 1024 ** 3)
      const loopDir = loop.dir
      roots.push(loopDir)
      undo.push({
        what: 'btrfs loop filesystem dispose',
        fn: async () => {
          const l = loop
          loop = undefined
          await l?.dispose()
        },
      })
      const lane: Lane = { driver: await btrfsFactory.open({ root: join(loopDir, 'strata') }), bases: new Map() }
      undo.push({ what: 'strata btrfs cleanup', fn: () => lane.driver.cleanup() })
      const peer = new Peer('btrfs', join(loopDir, 'cs'))
      undo.push({ what: 'containers-storage btrfs shutdown', fn: () => peer.close() })
      log(`btrfs: importing the Debian image (untimed) on ${loop.device}`)
      await importBase(lane, debian)
      await peer.importBase(debian)
      await sh('sync')
      log('btrfs: create + mount')
      results.push(await createMountCase(`btrfs (loop): create + mount container layer, ${debian.name} image ${mib(debian.bytes)}`, lane, peer, debian, FAST_RUNS))
      log('btrfs: diff after a 1-file change')
      results.push(await diffCase(`btrfs (loop): diff after 1-file change, ${debian.name} image ${mib(debian.bytes)}`, lane, peer, debian, NAIVE_DIFF_RUNS, log))
    }
  } finally {
    for (const step of undo.reverse()) {
      try {
        await step.fn()
      } catch (err) {
        log(`cleanup: ${step.what} failed: ${(err as Error).message}`)
      }
    }
    // Nothing may stay mounted under the work dir (or the loop mount, gone by now).
    for (const root of roots) {
      const left = mountsUnder(root)
      if (left.length === 0) continue
      log(`WARNING: still mounted after cleanup, detaching lazily: ${left.join(', ')}`)
      for (const m of left) {
        try {
          umount2(m, MNT_DETACH)
        } catch (err) {
          log(`WARNING: umount2(${m}, MNT_DETACH): ${(err as Error).message}`)
        }
      }
    }
    const still = mountsUnder(work)
    if (still.length > 0) throw new Error(`Not removing ${work}: still mounted: ${still.join(', ')}`)
    for (const dir of ['strata-overlay2', 'cs-overlay', 'strata-vfs', 'cs-vfs', 'busybox.tar', 'busybox-rootfs']) rmSync(join(work, dir), { recursive: true, force: true })
  }
  return results
}

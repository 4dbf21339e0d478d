/**
 * An aufs data root exactly as dockerd 20.10 would have written it, made
 * without an aufs kernel (Debian's has none, and no dockerd here can run
 * the aufs driver): a real dockerd 20.10 builds an overlay2 root (it loads
 * the 3-layer image, runs a container that adds, deletes and replaces
 * files, creates a second one), and this generator turns that root into
 * the aufs root the same dockerd would have left, following moby's aufs
 * driver (daemon/graphdriver/aufs) and the aufs module:
 *
 * - every driver-independent file is dockerd's own, byte for byte:
 *   image/<driver>/{imagedb,repositories.json,distribution}, layerdb's
 *   diff, parent, size and tar-split.json.gz, the containers' records
 *   (config.v2.json's "Driver" becomes "aufs", as dockerd writes it);
 * - layerdb's cache-id and mount-id are fresh random 64-hex ids (dockerd
 *   draws them per daemon), init-id is `<mount-id>-init`;
 * - aufs/ is moby's layout: the home and diff/, layers/, mnt/ 0701 (20.10.3
 *   and later), every layer's diff/<id> and mnt/<id> 0755, layers/<id>
 *   listing the ancestors nearest first ("\n" after each);
 * - an image layer's branch is its tar extracted verbatim (moby's aufs
 *   ApplyDiff untars it as it is: `.wh.` files stay files), here by GNU
 *   tar, an independent extractor, not by strata;
 * - a container's init and read-write branches hold what dockerd's
 *   overlay2 upper dirs hold, in the aufs module's form: a deletion is a
 *   hardlink `.wh.<name>` of the branch's whiteout base `.wh..wh.aufs`
 *   (0444), an opaque directory holds `.wh..wh..opq` (also a link of the
 *   base), and the branch top has `.wh..wh.aufs`, `.wh..wh.plnk/` and
 *   `.wh..wh.orph/` (0700): aufs makes them when it mounts a branch
 *   read-write, which dockerd does for both layers of every container
 *   (the init layer's setup, and create's own mount). Directory times are
 *   kept as the upper dirs had them.
 *
 * What dockerd reported about that root (image ID and tags, each
 * container's `docker diff` and `docker export`) comes along, so tests can
 * check strata against it.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readdirSync } from 'node:fs'
import { chmod, lchown, link, lstat, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import type { TestContext } from 'node:test'
import { readTar } from '../../src/archive/tar/index.js'
import { sha256Of, type Digest } from '../../src/digest/index.js'
import { lgetxattr, llistxattr, lremovexattr, lutimens, type Timespec } from '../../src/sys/index.js'
import { IMAGE_TAG, readDockerArchive, threeLayerArchive } from './docker-image.js'
import { startDockerd } from './dockerd.js'
import { run } from './peers.js'

/** What the changed container runs: the first run changes files; every later run prints what it sees of them. */
export const CHANGE_SCRIPT =
  'if [ -e /marker ]; then cat /marker /data/new; ls /home; [ -e /data/one ] || echo one-gone; [ -e /bin/vi ] || echo vi-gone; exit 0; fi; ' +
  'echo hello > /data/new && rm /data/one && rm -rf /home && mkdir /home && echo x > /home/x && mkdir -p /var/new/deep && rm /bin/vi && echo changed > /marker'
/** What a later run of the changed container prints. */
export const CHANGED_OUTPUT = 'changed\nhello\nx\none-gone\nvi-gone\n'

/** One entry of a container's filesystem as `docker export` wrote it. */
export interface ExportEntry {
  type: string
  mode: number
  uid: number
  gid: number
  mtimeSec: number
  size: number
  sha256?: string
  linkname?: string
}

export interface DockerdContainer {
  id: string
  name: string
  /** `docker diff`, sorted. */
  diff: string[]
  /** `docker export`, by path without a leading "./" or trailing "/". */
  view: Map<string, ExportEntry>
}

export interface DockerdAufsRoot {
  /** The aufs data root. */
  root: string
  imageId: Digest
  repoTags: string[]
  diffIds: Digest[]
  chainIds: Digest[]
  /** Ran CHANGE_SCRIPT once. */
  changed: DockerdContainer
  /** Created, never started. */
  fresh: DockerdContainer
  /** The aufs ids the generator gave each layer, by chainID, and each container's mount id. */
  cacheIds: Map<Digest, string>
  mountIds: Map<string, string>
}

const randomId = (): string => randomBytes(32).toString('hex')

/** `docker export`'s tar as a map of entries. */
export async function exportListing(tar: Buffer): Promise<Map<string, ExportEntry>> {
  const out = new Map<string, ExportEntry>()
  for await (const e of readTar(Readable.from([tar]))) {
    const chunks: Buffer[] = []
    for await (const c of e.body()) chunks.push(c)
    const h = e.header
    const name = h.name.replace(/^\.\//, '').replace(/\/$/, '')
    if (name === '' || name === '.') continue
    out.set(name, {
      type: h.type,
      mode: h.mode & 0o7777,
      uid: h.uid,
      gid: h.gid,
      mtimeSec: h.mtime.sec,
      size: h.type === 'file' ? h.size : 0,
      ...(h.type === 'file' ? { sha256: sha256Of(Buffer.concat(chunks)) } : {}),
      ...(h.type === 'symlink' || h.type === 'hardlink' ? { linkname: h.linkname } : {}),
    })
  }
  return out
}

async function readText(path: string): Promise<string> {
  return (await readFile(path, 'utf8')).trim()
}

/** The overlay2 root dockerd makes, and what it says about it. */
async function buildWithDockerd(t: TestContext, dataRoot: string): Promise<{ imageId: Digest; repoTags: string[]; changed: DockerdContainer; fresh: DockerdContainer }> {
  const archive = await threeLayerArchive(t)
  const dockerd = await startDockerd(t, { storageDriver: 'overlay2', dataRoot })
  try {
    await dockerd.docker(['load', '-i', archive])
    await dockerd.docker(['run', '--name', 'changed', '--network', 'none', IMAGE_TAG, 'sh', '-c', CHANGE_SCRIPT])
    await dockerd.docker(['create', '--name', 'fresh', '--network', 'none', IMAGE_TAG, 'cat', '/data/one'])
    const imageId = (await dockerd.docker(['image', 'inspect', '--format', '{{.Id}}', IMAGE_TAG])).stdout.toString().trim() as Digest
    const repoTags = JSON.parse((await dockerd.docker(['image', 'inspect', '--format', '{{json .RepoTags}}', IMAGE_TAG])).stdout.toString()) as string[]
    const container = async (name: string): Promise<DockerdContainer> => {
      const id = (await dockerd.docker(['inspect', '--format', '{{.Id}}', name])).stdout.toString().trim()
      const diffOut = (await dockerd.docker(['diff', name])).stdout.toString().trim()
      const diff = diffOut === '' ? [] : diffOut.split('\n').sort()
      const view = await exportListing((await dockerd.docker(['export', name])).stdout)
      return { id, name, diff, view }
    }
    return { imageId, repoTags, changed: await container('changed'), fresh: await container('fresh') }
  } finally {
    await dockerd.stop()
  }
}

/** mkdir with an exact mode. */
async function mkdirMode(path: string, mode: number): Promise<void> {
  await mkdir(path, { mode })
  await chmod(path, mode)
}

/** A file's mtime as a Timespec. */
function timesOf(st: { mtimeNs: bigint; atimeNs: bigint }): { atime: Timespec; mtime: Timespec } {
  const ts = (ns: bigint): Timespec => ({ sec: Number(ns / 1_000_000_000n), nsec: Number(ns % 1_000_000_000n) })
  return { atime: ts(st.atimeNs), mtime: ts(st.mtimeNs) }
}

/**
 * Makes `branch` a copy of dockerd's overlay2 upper dir `upper` in the aufs
 * module's form (see the file header). cp -a copies it (owners, modes,
 * times, xattrs, hardlinks, devices); then whiteouts and opaque dirs are
 * rewritten and overlayfs's own attributes dropped, directory times
 * restored. A redirect or metacopy upper is refused: its content is not
 * all there.
 */
async function upperToAufsBranch(upper: string, branch: string): Promise<void> {
  await run('cp', ['-a', '--', `${upper}/.`, branch])
  const base = join(branch, '.wh..wh.aufs')
  await writeFile(base, '')
  await chmod(base, 0o444)
  await mkdirMode(join(branch, '.wh..wh.plnk'), 0o700)
  await mkdirMode(join(branch, '.wh..wh.orph'), 0o700)
  const walk = async (dir: string, top: boolean): Promise<void> => {
    const dirSt = await lstat(dir, { bigint: true })
    let touched = false
    for (const name of readdirSync(dir)) {
      if (top && name.startsWith('.wh..wh.')) continue
      const path = join(dir, name)
      const st = await lstat(path, { bigint: true })
      for (const x of llistxattr(path).filter((n) => n.startsWith('trusted.overlay.'))) {
        if (x === 'trusted.overlay.redirect' || x === 'trusted.overlay.metacopy') throw new Error(`${path} carries ${x}: dockerd's overlay2 used a kernel feature whose upper dirs cannot become aufs branches`)
        if (x === 'trusted.overlay.opaque' && lgetxattr(path, x)?.toString() === 'y') {
          const t = timesOf(st)
          await link(base, join(path, '.wh..wh..opq'))
          lutimens(path, t.atime, t.mtime)
        }
        lremovexattr(path, x)
      }
      if (st.isCharacterDevice() && st.rdev === 0n) {
        await rm(path)
        await link(base, join(dir, `.wh.${name}`))
        touched = true
        continue
      }
      if (st.isDirectory()) await walk(path, false)
    }
    if (touched) {
      const t = timesOf(dirSt)
      lutimens(dir, t.atime, t.mtime)
    }
  }
  await walk(branch, true)
}

/** Writes aufs's files for layer `id` on `ancestors` (nearest first): diff/<id> and mnt/<id> 0755, layers/<id>. */
async function aufsLayer(home: string, id: string, ancestors: string[]): Promise<string> {
  const diff = join(home, 'diff', id)
  await mkdirMode(diff, 0o755)
  await mkdirMode(join(home, 'mnt', id), 0o755)
  await writeFile(join(home, 'layers', id), ancestors.map((a) => `${a}\n`).join(''))
  await chmod(join(home, 'layers', id), 0o644)
  return diff
}

/**
 * Builds the dockerd-made aufs root in `dest` (which must not exist). The
 * dockerd run happens in a scratch dir removed when `t` ends.
 */
export async function makeDockerdAufsRoot(t: TestContext, dest: string): Promise<DockerdAufsRoot> {
  const scratch = `${dest}.overlay2-src`
  await rm(scratch, { recursive: true, force: true })
  t.after(() => rm(scratch, { recursive: true, force: true }))
  const made = await buildWithDockerd(t, scratch)
  const image = await readDockerArchive(await threeLayerArchive(t))
  const layerTars = new Map(image.diffIds.map((d, i) => [d, image.layers[i]!] as const))

  // Everything but the overlay2 driver's own trees, as dockerd left it.
  await mkdirMode(dest, 0o711)
  await run('tar', ['-C', scratch, '--exclude=./overlay2', '--exclude=./image/overlay2', '--xattrs', "--xattrs-include=*", '-cf', `${dest}.tar`, '.'])
  await run('tar', ['-C', dest, '--xattrs', "--xattrs-include=*", '--numeric-owner', '-xpf', `${dest}.tar`])
  await rm(`${dest}.tar`)
  await run('cp', ['-a', join(scratch, 'image', 'overlay2'), join(dest, 'image', 'aufs')])

  const home = join(dest, 'aufs')
  await mkdirMode(home, 0o701)
  for (const sub of ['diff', 'layers', 'mnt']) await mkdirMode(join(home, sub), 0o701)

  // Image layers, parents first.
  const layerdb = join(dest, 'image', 'aufs', 'layerdb')
  const chains = (await readdir(join(layerdb, 'sha256'))).filter((n) => /^[a-f0-9]{64}$/.test(n))
  const info = new Map<string, { diffId: Digest; parent: string | null }>()
  for (const c of chains) {
    const parentText = await readFile(join(layerdb, 'sha256', c, 'parent'), 'utf8').catch(() => undefined)
    info.set(c, { diffId: (await readText(join(layerdb, 'sha256', c, 'diff'))) as Digest, parent: parentText === undefined ? null : parentText.trim().replace(/^sha256:/, '') })
  }
  const cacheIds = new Map<Digest, string>()
  const ancestorsOf = new Map<string, string[]>()
  const order: string[] = []
  const visit = (c: string): void => {
    if (order.includes(c)) return
    const p = info.get(c)!.parent
    if (p !== null) visit(p)
    order.push(c)
  }
  for (const c of chains) visit(c)
  for (const c of order) {
    const { diffId, parent } = info.get(c)!
    const id = randomId()
    const ancestors = parent === null ? [] : [cacheIds.get(`sha256:${parent}` as Digest)!, ...ancestorsOf.get(cacheIds.get(`sha256:${parent}` as Digest)!)!]
    ancestorsOf.set(id, ancestors)
    cacheIds.set(`sha256:${c}` as Digest, id)
    const diff = await aufsLayer(home, id, ancestors)
    const tar = layerTars.get(diffId)
    assert.ok(tar !== undefined, `the saved image has the layer ${diffId}`)
    await run('tar', ['--numeric-owner', '--same-owner', '-p', '--xattrs', '--xattrs-include=*', '-C', diff, '-xf', '-'], { input: tar })
    // moby's Unpack never touches the layer dir itself.
    await chmod(diff, 0o755)
    await lchown(diff, 0, 0)
    await writeFile(join(layerdb, 'sha256', c, 'cache-id'), id)
  }

  // Containers: init and read-write branches from dockerd's upper dirs.
  const mountIds = new Map<string, string>()
  for (const name of await readdir(join(layerdb, 'mounts'))) {
    const dir = join(layerdb, 'mounts', name)
    const oldMount = await readText(join(dir, 'mount-id'))
    const oldInit = await readText(join(dir, 'init-id'))
    const parent = (await readText(join(dir, 'parent'))) as Digest
    const top = cacheIds.get(parent)!
    const mountId = randomId()
    const initId = `${mountId}-init`
    const initAncestors = [top, ...ancestorsOf.get(top)!]
    await upperToAufsBranch(join(scratch, 'overlay2', oldInit, 'diff'), await aufsLayer(home, initId, initAncestors))
    await upperToAufsBranch(join(scratch, 'overlay2', oldMount, 'diff'), await aufsLayer(home, mountId, [initId, ...initAncestors]))
    await writeFile(join(dir, 'mount-id'), mountId)
    await writeFile(join(dir, 'init-id'), initId)
    mountIds.set(name, mountId)
    // As if dockerd had run on `dest` all along: its own paths in the record name `dest`.
    const config = join(dest, 'containers', name, 'config.v2.json')
    const text = await readFile(config, 'utf8')
    assert.ok(text.includes('"Driver":"overlay2"'), `${config} names its driver`)
    await writeFile(config, text.replace('"Driver":"overlay2"', '"Driver":"aufs"').split(scratch).join(dest))
  }
  return {
    root: dest,
    imageId: made.imageId,
    repoTags: made.repoTags,
    diffIds: image.diffIds,
    chainIds: order.map((c) => `sha256:${c}` as Digest),
    changed: made.changed,
    fresh: made.fresh,
    cacheIds,
    mountIds,
  }
}

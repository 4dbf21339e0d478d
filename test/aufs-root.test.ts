/**
 * aufs data roots in strata: one as dockerd 20.10 wrote it (made by the
 * generator in helpers/aufs-root.ts from a real dockerd run) and one strata
 * wrote with `-s aufs`. Each opens without naming the driver; images list
 * with dockerd's IDs and tags; every layer exports with its original
 * diffID (tar-split over the aufs branches); containers mount through
 * fuse-overlayfs and show, file for file, what `docker export` showed;
 * `strata diff` says what `docker diff` said; and a container runs (runc)
 * and finds its changes.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { lstat, mkdtemp, readFile, readdir, readlink, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import {
  commitContainer,
  containerChanges,
  createContainer,
  mountContainer,
  removeContainer,
  unmountContainer,
} from '../src/container/index.js'
import { sha256Of } from '../src/digest/index.js'
import { topChainId } from '../src/image/index.js'
import { listImages, Store } from '../src/store/index.js'
import { MNT_DETACH, umount2 } from '../src/sys/index.js'
import { CHANGE_SCRIPT, CHANGED_OUTPUT, makeDockerdAufsRoot, type ExportEntry } from './helpers/aufs-root.js'
import { containerEnv, startToExit } from './helpers/container-env.js'
import { IMAGE_TAG } from './helpers/docker-image.js'
import { mountsAtOrUnder, requireDockerd } from './helpers/dockerd.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'

/** A scratch dir for a data root; unmounted (failing the test if anything was left) and removed when `t` ends. */
async function scratch(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-test-aufs-root-'))
  t.after(async () => {
    const left = mountsAtOrUnder([dir])
    for (const m of left) umount2(m, MNT_DETACH)
    await rm(dir, { recursive: true, force: true })
    assert.deepEqual(left, [], `mounts left under ${dir}`)
  })
  return dir
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256')
  for await (const c of createReadStream(path)) h.update(c as Buffer)
  return `sha256:${h.digest('hex')}`
}

/** A mounted rootfs in docker export's terms (hardlinks are files here), root excluded. */
async function viewOf(rootfs: string): Promise<Map<string, ExportEntry>> {
  const out = new Map<string, ExportEntry>()
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(rel === '' ? rootfs : join(rootfs, rel))).sort()) {
      const path = rel === '' ? name : `${rel}/${name}`
      const abs = join(rootfs, path)
      const st = await lstat(abs)
      const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : st.isFIFO() ? 'fifo' : 'other'
      out.set(path, {
        type,
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
        mtimeSec: Math.floor(st.mtimeMs / 1000),
        size: st.isFile() ? st.size : 0,
        ...(st.isFile() ? { sha256: await sha256File(abs) } : {}),
        ...(st.isSymbolicLink() ? { linkname: await readlink(abs) } : {}),
      })
      if (st.isDirectory()) await walk(path)
    }
  }
  await walk('')
  return out
}

/** docker export's listing with hardlinks resolved to the files they name (a mount has no notion of "first name"). */
function resolveHardlinks(view: Map<string, ExportEntry>): Map<string, ExportEntry> {
  const out = new Map<string, ExportEntry>()
  for (const [path, e] of view) {
    if (e.type !== 'hardlink') {
      out.set(path, e)
      continue
    }
    const target = view.get(e.linkname!.replace(/^\.?\//, ''))
    assert.ok(target !== undefined, `docker export's hardlink ${path} names ${e.linkname}`)
    out.set(path, { ...target })
  }
  return out
}

function viewDifferences(actual: Map<string, ExportEntry>, expected: Map<string, ExportEntry>): string[] {
  const out: string[] = []
  for (const p of [...new Set([...actual.keys(), ...expected.keys()])].sort()) {
    const a = actual.get(p)
    const e = expected.get(p)
    if (a === undefined) out.push(`missing in strata's view: ${p}`)
    else if (e === undefined) out.push(`only in strata's view: ${p}`)
    else if (JSON.stringify(a) !== JSON.stringify(e)) out.push(`${p}: strata ${JSON.stringify(a)} != docker ${JSON.stringify(e)}`)
  }
  return out
}

/** docker diff reports a replaced directory as changed with its old content deleted; strata's aufs reads the opaque marker: one "D". */
const underHome = (l: string): boolean => l.endsWith(' /home') || l.includes(' /home/')

test('an aufs root as dockerd 20.10 wrote it opens in strata: images, layers with their diffIDs, containers through fuse-overlayfs as docker showed them', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'fuse-overlayfs', 'runc', 'busybox', 'tar') || !requireDockerd(t)) return
  const dir = await scratch(t)
  const fx = await makeDockerdAufsRoot(t, join(dir, 'root'))

  // The generator wrote aufs's own form: whiteouts linked to the branch's base, an opaque marker, the bookkeeping.
  const branch = join(fx.root, 'aufs', 'diff', fx.mountIds.get(fx.changed.id)!)
  assert.equal((await lstat(join(branch, '.wh..wh.aufs'))).nlink, 4, '.wh.vi, .wh.one and home/.wh..wh..opq link the base')
  assert.deepEqual((await readdir(join(branch, 'home'))).sort(), ['.wh..wh..opq', 'x'])
  assert.ok((await lstat(join(branch, '.wh..wh.plnk'))).isDirectory())
  assert.ok(fx.changed.view.size > 250, `docker export listed the whole rootfs (${fx.changed.view.size} entries)`)

  const store = await Store.open({ root: fx.root })
  try {
    assert.equal(store.driver.name, 'aufs', 'the root is opened with the driver its files are for')
    const images = await listImages(store)
    assert.deepEqual(images.map((i) => [i.Id, i.RepoTags]), [[fx.imageId, ['strata-test-3layers:latest']]])
    assert.deepEqual(fx.repoTags, ['strata-test-3layers:latest'])

    for (const [i, chain] of fx.chainIds.entries()) {
      const info = await store.layers.info(chain)
      assert.equal(info.cacheId, fx.cacheIds.get(chain), 'the layer is the aufs branch the generator wrote')
      const { stream, verified } = await store.layers.export(chain)
      const chunks: Buffer[] = []
      for await (const c of stream) chunks.push(c as Buffer)
      assert.equal(sha256Of(Buffer.concat(chunks)), fx.diffIds[i], `layer ${i} exports with its original diffID`)
      assert.deepEqual(await verified, { digest: fx.diffIds[i], matches: true, fromTarSplit: true })
    }
    assert.deepEqual(await store.check(), [], 'strata check finds nothing wrong')

    const containers = await store.containers.list()
    assert.deepEqual(containers.map((c) => c.id).sort(), [fx.changed.id, fx.fresh.id].sort())

    // The changed container's filesystem, mounted through fuse-overlayfs, is what docker export wrote.
    const rootfs = await mountContainer(store, fx.changed.id)
    try {
      assert.deepEqual(await store.driver.mountedLayers(), [fx.mountIds.get(fx.changed.id)])
      assert.deepEqual(viewDifferences(await viewOf(rootfs), resolveHardlinks(fx.changed.view)), [])
    } finally {
      await unmountContainer(store, fx.changed.id)
    }
    const rootfsFresh = await mountContainer(store, fx.fresh.id)
    try {
      assert.deepEqual(viewDifferences(await viewOf(rootfsFresh), resolveHardlinks(fx.fresh.view)), [])
    } finally {
      await unmountContainer(store, fx.fresh.id)
    }

    const changes = (await containerChanges(store, fx.changed.id)).map((c) => `${c.kind} ${c.path}`)
    assert.deepEqual(changes.filter((l) => !underHome(l)).sort(), fx.changed.diff.filter((l) => !underHome(l)).sort(), 'strata diff says what docker diff said')
    assert.deepEqual(changes.filter(underHome), ['D /home', 'A /home/x'])
    assert.deepEqual(fx.changed.diff.filter(underHome).sort(), ['A /home/x', 'C /home', 'D /home/new'].sort())
    assert.deepEqual(await containerChanges(store, fx.fresh.id), [])
    assert.deepEqual(fx.fresh.diff, [])

    // It runs, and finds its changes.
    let out = ''
    const { code, stdout } = await startToExit(store, fx.changed.id)
    out += stdout
    assert.equal(code, 0)
    assert.equal(out, CHANGED_OUTPUT)
    assert.deepEqual(await store.driver.mountedLayers(), [], 'the run unmounted what it mounted')
  } finally {
    await run('runc', ['delete', '--force', fx.changed.id]).catch(() => {})
    await store.close()
  }
})

test('a root strata wrote with -s aufs: containers run, diff and commit through fuse-overlayfs; it reopens as aufs without naming it', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'fuse-overlayfs', 'runc', 'busybox', 'tar')) return
  const dir = await scratch(t)
  const root = join(dir, 'root')
  const env = await containerEnv(t, 'aufs', root)
  const { store } = env
  const c = await createContainer(store, IMAGE_TAG, { cmd: ['sh', '-c', CHANGE_SCRIPT] })
  assert.equal((await startToExit(store, c.id)).code, 0)
  let out = ''
  const ran = await startToExit(store, c.id)
  out += ran.stdout
  assert.equal(ran.code, 0)
  assert.equal(out, CHANGED_OUTPUT)
  assert.deepEqual((await containerChanges(store, c.id)).map((ch) => `${ch.kind} ${ch.path}`), [
    'C /bin',
    'D /bin/vi',
    'C /data',
    'A /data/new',
    'D /data/one',
    'D /home',
    'A /home/x',
    'A /marker',
    'C /var',
    'A /var/new',
    'A /var/new/deep',
  ])
  // dockerd's layout for the container: init and rw layers stacked on the image's branches.
  const mount = await store.layers.getMount(c.id)
  const topCache = (await store.layers.info(topChainId((await store.images.get(env.imageId)).config)!)).cacheId
  const layersOf = async (id: string): Promise<string[]> => (await readFile(join(root, 'aufs', 'layers', id), 'utf8')).split('\n').filter((l) => l !== '')
  assert.deepEqual((await layersOf(mount.mountId)).slice(0, 2), [mount.initId, topCache])
  assert.deepEqual((await layersOf(mount.initId!))[0], topCache)

  // Commit: the new layer's tar carries aufs/OCI whiteouts, and exports with its diffID.
  const committed = await commitContainer(store, c.id, { reference: 'committed:latest' })
  assert.equal(committed.addedLayer, true)
  const chain = topChainId((await store.images.get(committed.imageId)).config)!
  const { stream, verified } = await store.layers.export(chain)
  const chunks: Buffer[] = []
  for await (const ch of stream) chunks.push(ch as Buffer)
  assert.equal(sha256Of(Buffer.concat(chunks)), committed.diffId)
  assert.equal((await verified).matches, true)
  const names = (await run('tar', ['-tf', '-'], { input: Buffer.concat(chunks) })).stdout.toString().split('\n')
  assert.ok(names.includes('bin/.wh.vi') && names.includes('data/.wh.one') && names.includes('home/.wh..wh..opq'), `aufs/OCI whiteouts in the committed layer: ${names.join(' ')}`)
  await removeContainer(store, c.id)

  const again = await Store.open({ root })
  try {
    assert.equal(again.driver.name, 'aufs')
    assert.equal((await listImages(again)).length, 2)
  } finally {
    await again.close()
  }
})

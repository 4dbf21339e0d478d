/**
 * strata's devicemapper driver against dockerd 20.10's, both ways, run in
 * the test VM (test/graphdriver-devicemapper.test.ts, full suite only:
 * each dockerd start under emulation costs tens of seconds).
 *
 * Debian's dockerd (docker.io 20.10.24) is built with devicemapper (it
 * links libdevmapper; `docker info` says "Storage Driver: devicemapper"
 * with the deprecation warning), so the real daemon is the reference. The
 * VM has no udev: dockerd runs with dm.override_udev_sync_check=true, as
 * strata needs nothing of the kind. /etc/docker must be writable (dockerd
 * writes key.json there): the host side gives the guest a tmpfs on it.
 *
 * The image is tricky on purpose: its base layer is makeRichTree (hardlinks
 * across directories, char and block devices, a fifo, user.* and binary
 * xattrs, security.capability, large ids, long and non-ASCII names,
 * sub-second times), its second layer whiteouts a file, makes a directory
 * opaque, adds a device, a hardlink pair and an xattr. A vfs store holds it
 * as the reference merged view, and `strata save` makes the docker-archive
 * both sides load.
 *
 * - dockerd → strata: dockerd `docker load`s the archive on devicemapper
 *   (xfs, its default) and stops; strata opens that data root (the
 *   driver from its `devicemapper/` home): same image ID, the merged view
 *   of the image equals the reference (but for the empty-valued xattr,
 *   which dockerd's tar reader drops: asDockerdExtracts), and check() finds nothing (every
 *   layer rebuilt from tar-split against its diffID, and dockerd's pool
 *   against dockerd's metadata files).
 * - strata → dockerd: strata loads the archive into a fresh devicemapper
 *   root (ext4); dockerd opens it, lists the image with the same ID,
 *   `docker save`s the same config and layer bytes (read through strata's
 *   thin devices), and `docker create` + `docker export` show the merged
 *   view (the whiteout and the opaque dir applied, devices, hardlinks and
 *   xattrs there). After dockerd stops, strata's check() of the root
 *   (dockerd added a container's init and read-write devices) is clean.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { describe, test, type TestContext } from 'node:test'
import { changesNaive } from '../../src/archive/changes.js'
import { exportChanges } from '../../src/archive/export.js'
import { END_OF_ARCHIVE, encodeHeader, padding, readTar, type TarHeader, type TarHeaderInput } from '../../src/archive/tar/index.js'
import { Store } from '../../src/store/index.js'
import { removePoolOf } from './devicemapper-cases.js'
import { readDockerArchive } from './docker-image.js'
import { startDockerd } from './dockerd.js'
import { makeRichTree, RICH } from './fixtures.js'
import { makeImage } from './image-fixtures.js'
import { snapshotImage } from './image-view.js'
import { strata } from './strata-cli.js'
import { diffTrees, type TreeEntry } from './tree.js'

const TAG = 'strata-dm-tricky:latest'

/** dockerd's options in the VM: no udev, and sizes the guest's /tmp holds (sparse). */
const DOCKERD_DM_OPTS = ['dm.override_udev_sync_check=true', 'dm.loopdatasize=4G', 'dm.loopmetadatasize=256M', 'dm.basesize=512M']
/** strata's, for the root it makes for dockerd. */
const STRATA_DM_OPTS = ['--storage-opt', 'dm.loopdatasize=4G', '--storage-opt', 'dm.loopmetadatasize=256M', '--storage-opt', 'dm.basesize=512M', '--storage-opt', 'dm.fs=ext4']

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

function tarOf(entries: Array<{ h: TarHeaderInput; body?: Buffer }>): Buffer {
  const parts: Buffer[] = []
  for (const { h, body } of entries) {
    const size = body?.length ?? 0
    parts.push(encodeHeader({ mode: 0o644, mtime: { sec: 1700000000, nsec: 250000000 }, ...h, size }))
    if (body !== undefined && size > 0) parts.push(body, padding(size))
  }
  parts.push(END_OF_ARCHIVE)
  return Buffer.concat(parts)
}

/** The second layer: a whiteout, an opaque dir with a new child, a device, a hardlink pair, an xattr. */
function secondLayer(): Buffer {
  const t = { sec: 1700001234, nsec: 987654321 }
  const body = Buffer.from('after the opaque marker\n')
  return tarOf([
    { h: { name: 'dirs/', type: 'dir', mode: 0o755, mtime: t } },
    { h: { name: 'dirs/public/', type: 'dir', mode: 0o755, mtime: t } },
    { h: { name: 'dirs/public/.wh..wh..opq', type: 'file', mode: 0o600, mtime: t } },
    { h: { name: 'dirs/public/after', type: 'file', mode: 0o640, uid: 1000, gid: 1000, mtime: t }, body },
    { h: { name: 'names/', type: 'dir', mode: 0o755, mtime: t } },
    { h: { name: `names/.wh.${RICH.spaces.slice('names/'.length)}`, type: 'file', mode: 0o600, mtime: t } },
    { h: { name: 'second/', type: 'dir', mode: 0o750, mtime: t } },
    { h: { name: 'second/tty', type: 'char', mode: 0o620, devmajor: 5, devminor: 0, gid: 5, mtime: t } },
    { h: { name: 'second/linked', type: 'file', mode: 0o644, mtime: t, xattrs: new Map([['user.layer', Buffer.from('two')]]) }, body: Buffer.from('two names\n') },
    { h: { name: 'second/linked-too', type: 'hardlink', linkname: 'second/linked', mode: 0o644, mtime: t } },
  ])
}

/** A data root under the guest's /tmp, its pool and devices removed and the directory deleted when the test ends. */
async function dataRoot(t: TestContext, name: string): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), `strata-dm-${name}-`))
  t.after(async () => {
    removePoolOf(root)
    await rm(root, { recursive: true, force: true })
  })
  return root
}

interface Reference {
  archive: string
  imageId: string
  view: Map<string, TreeEntry>
}

/** The tricky image in a vfs store (the reference merged view) and as a docker-archive. */
async function reference(t: TestContext): Promise<Reference> {
  const scratch = await mkdtemp(join(tmpdir(), 'strata-dm-ref-'))
  t.after(() => rm(scratch, { recursive: true, force: true }))
  const tree = join(scratch, 'tree')
  await makeRichTree(tree)
  const base = await drain(exportChanges(tree, await changesNaive(tree, null), { headers: 'lossless' }))
  const root = join(scratch, 'root')
  await mkdir(root)
  const store = await Store.open({ root, driver: 'vfs' })
  let imageId: string
  try {
    imageId = (await makeImage(store, { layers: [base, secondLayer()], created: '2024-01-02T03:04:05Z', tags: [TAG] })).id
  } finally {
    await store.close()
  }
  const archive = join(scratch, 'tricky.tar')
  const saved = await strata(['save', '-o', archive, TAG], { root, driver: 'vfs' })
  assert.equal(saved.code, 0, `strata save: ${saved.stderr}`)
  return { archive, imageId, view: await snapshotImage(root, TAG, VIEW, 'vfs') }
}

/**
 * Directory mtimes are left out: a whiteout or an opaque marker changes
 * its directory after the directory's own header was applied, at apply
 * time, on both sides alike.
 */
const VIEW = { dirMtimes: false }

/**
 * The view as dockerd extracts it: without xattrs whose value is empty.
 * dockerd reads layer tars with Go's archive/tar, whose parsePAX drops a
 * PAX record with an empty value ("According to PAX specification, a
 * value is stored only if it is non-empty. Otherwise, the key is
 * deleted."), so `SCHILY.xattr.user.empty=` never reaches its applier:
 * dockerd's own devices lack the attribute, whoever reads them.
 */
function asDockerdExtracts(view: Map<string, TreeEntry>): Map<string, TreeEntry> {
  const out = new Map<string, TreeEntry>()
  for (const [path, e] of view) {
    out.set(path, { ...e, xattrs: Object.fromEntries(Object.entries(e.xattrs).filter(([, v]) => v !== '')) })
  }
  return out
}

type Exported = TarHeader & { sha256: string }

/** What Docker's init layer adds to a container's root (daemon/initlayer): not part of the image. */
const INIT_PATHS = new Set(['.dockerenv', 'dev/console', 'dev/pts', 'dev/shm', 'etc', 'etc/hostname', 'etc/hosts', 'etc/mtab', 'etc/resolv.conf', 'proc', 'sys'])

/**
 * `docker export` of a container against the reference view, path by path:
 * every image path present with its type, mode, owner, content, device
 * numbers, link target and hardlink structure, and nothing else but the
 * init layer's files. dockerd's tar writer (20.10, Go's archive/tar in
 * USTAR/PAX as needed) keeps mtimes to the second, and of the xattrs only
 * security.capability (ReadSecurityXattrToTarHeader): the user.* ones are
 * not compared here (they are in the view strata reads from the devices).
 */
function exportDifferences(exported: Map<string, Exported>, view: Map<string, TreeEntry>): string[] {
  const out: string[] = []
  for (const [path, want] of view) {
    if (path === '.') continue
    const got = exported.get(path)
    if (got === undefined) {
      out.push(`${path}: missing from the export`)
      continue
    }
    const group = want.inodeGroup?.split('|')
    const type = got.type === 'hardlink' ? 'file' : got.type
    if (type !== want.type) out.push(`${path}: type ${got.type} != ${want.type}`)
    if (got.type === 'hardlink' && (group === undefined || !group.includes(got.linkname))) out.push(`${path}: a hardlink to ${got.linkname}, not within its inode group ${want.inodeGroup ?? '(none)'}`)
    if (got.mode !== want.mode) out.push(`${path}: mode ${got.mode.toString(8)} != ${want.mode.toString(8)}`)
    if (got.uid !== want.uid || got.gid !== want.gid) out.push(`${path}: owner ${got.uid}:${got.gid} != ${want.uid}:${want.gid}`)
    if (got.type === 'file' && got.sha256 !== want.sha256) out.push(`${path}: content differs`)
    if ((want.type === 'char' || want.type === 'block') && (got.devmajor !== want.rdevMajor || got.devminor !== want.rdevMinor)) out.push(`${path}: device ${got.devmajor}:${got.devminor} != ${want.rdevMajor}:${want.rdevMinor}`)
    if (want.type === 'symlink' && got.linkname !== want.linkTarget) out.push(`${path}: link target ${got.linkname} != ${want.linkTarget}`)
    if (want.type !== 'dir' && BigInt(got.mtime.sec) !== want.mtimeNs / 1_000_000_000n) out.push(`${path}: mtime ${got.mtime.sec} != ${want.mtimeNs / 1_000_000_000n}`)
    const caps = [...got.xattrs.keys()]
    const wantCaps = Object.keys(want.xattrs).filter((x) => x === 'security.capability')
    if (caps.join() !== wantCaps.join()) out.push(`${path}: exported xattrs [${caps.join(', ')}] != [${wantCaps.join(', ')}]`)
  }
  for (const path of exported.keys()) {
    if (path !== '' && path !== '.' && !view.has(path) && !INIT_PATHS.has(path)) out.push(`${path}: in the export, not in the image`)
  }
  return out
}

/** Progress on stderr: under emulation a step can take a minute, and a stuck one should say which it is. */
function step(msg: string): void {
  process.stderr.write(`[dm-dockerd ${new Date().toISOString().slice(11, 19)}] ${msg}\n`)
}

function assertSameView(got: Map<string, TreeEntry>, want: Map<string, TreeEntry>, what: string): void {
  const diffs = diffTrees(got, want)
  assert.deepEqual(diffs, [], `${what} differs from the reference (vfs) view:\n${diffs.slice(0, 30).join('\n')}`)
}

export function devicemapperDockerdCases(): void {
  describe('devicemapper against dockerd 20.10 (--storage-driver devicemapper)', () => {
    test('dockerd → strata: a root dockerd loaded the tricky image into opens in strata with the same merged view, and checks clean', { timeout: 15 * 60_000 }, async (t) => {
      step('dockerd → strata: making the reference image')
      const ref = await reference(t)
      const root = await dataRoot(t, 'dockerd')
      step('starting dockerd')
      const dockerd = await startDockerd(t, { storageDriver: 'devicemapper', storageOpts: DOCKERD_DM_OPTS, dataRoot: root })
      // dockerd stops before the data root's cleanup (t.after) removes its devices and files, whatever fails.
      try {
        const info = (await dockerd.docker(['info', '--format', '{{.Driver}} {{json .DriverStatus}}'])).stdout.toString()
        assert.match(info, /^devicemapper /, 'dockerd runs the devicemapper driver')
        step('docker load')
        await dockerd.docker(['load', '-i', ref.archive])
        const listed = (await dockerd.docker(['images', '--no-trunc', '--format', '{{.ID}}', TAG])).stdout.toString().trim()
        assert.equal(listed, ref.imageId, "dockerd's image ID")
      } finally {
        step('stopping dockerd')
        await dockerd.stop()
      }

      step('strata opens the root')
      const store = await Store.open({ root })
      try {
        assert.equal(store.driver.name, 'devicemapper', "strata picks the root's driver from its devicemapper/ home")
        assert.equal(await store.findImage(TAG), ref.imageId)
        assert.deepEqual(await store.check(), [], "strata's check of dockerd's root (pool against metadata, layers against diffIDs)")
      } finally {
        await store.close()
      }
      step('strata snapshots the merged view')
      assertSameView(await snapshotImage(root, TAG, VIEW), asDockerdExtracts(ref.view), "strata's merged view of dockerd's devicemapper image")
    })

    test('strata → dockerd: a root strata loaded the tricky image into opens in dockerd: same ID, save and export as loaded; strata checks it clean afterwards', { timeout: 15 * 60_000 }, async (t) => {
      step('strata → dockerd: making the reference image')
      const ref = await reference(t)
      const root = await dataRoot(t, 'strata')
      step('strata load')
      const loaded = await strata([...STRATA_DM_OPTS, 'load', '-i', ref.archive], { root, driver: 'devicemapper' })
      assert.equal(loaded.code, 0, `strata load: ${loaded.stderr}`)
      step('strata snapshots the merged view')
      assertSameView(await snapshotImage(root, TAG, VIEW), ref.view, "strata's merged view of its own devicemapper image")
      // dockerd creates its loop pool itself: strata's must be gone first (as after a strata process ends on a fresh machine).
      step('removing the pool; starting dockerd')
      removePoolOf(root)

      const dockerd = await startDockerd(t, { storageDriver: 'devicemapper', storageOpts: DOCKERD_DM_OPTS, dataRoot: root })
      try {
        const listed = (await dockerd.docker(['images', '--no-trunc', '--format', '{{.ID}}', TAG])).stdout.toString().trim()
        assert.equal(listed, ref.imageId, "dockerd's image ID for strata's image")
        const saved = join(await mkdtemp(join(tmpdir(), 'strata-dm-save-')), 'saved.tar')
        t.after(() => rm(join(saved, '..'), { recursive: true, force: true }))
        step('docker save')
        await dockerd.docker(['save', '-o', saved, TAG])
        const want = await readDockerArchive(ref.archive)
        const got = await readDockerArchive(saved)
        assert.equal(got.imageId, want.imageId)
        assert.deepEqual(got.diffIds, want.diffIds)
        got.layers.forEach((l, i) => assert.ok(l.equals(want.layers[i]!), `docker save's layer ${i} differs from the loaded one`))

        step('docker create')
        const cid = (await dockerd.docker(['create', TAG, 'true'])).stdout.toString().trim()
        step('docker export')
        const exported = new Map<string, Exported>()
        for await (const e of readTar(Readable.from([(await dockerd.docker(['export', cid])).stdout]))) {
          const chunks: Buffer[] = []
          for await (const c of e.body()) chunks.push(c)
          const h = e.header
          exported.set(h.name.replace(/^\.\//, '').replace(/\/$/, ''), { ...h, sha256: createHash('sha256').update(Buffer.concat(chunks)).digest('hex') })
        }
        assert.deepEqual(exportDifferences(exported, ref.view), [], "dockerd's export of a container on strata's image differs from the reference view")
        step('docker rm')
        await dockerd.docker(['rm', cid])
      } finally {
        step('stopping dockerd')
        await dockerd.stop()
      }
      step('strata checks the root')

      const store = await Store.open({ root })
      try {
        assert.deepEqual(await store.check(), [], "strata's check after dockerd used its root")
      } finally {
        await store.close()
      }
    })
  })
}

/**
 * strata's overlay2 against dockerd 20.10's, on the same real image.
 *
 * dockerd builds a 3-layer image (a `docker import`ed busybox root
 * filesystem, then two RUN steps through the legacy builder) and saves it
 * (helpers/docker-image.ts, cached); a fresh dockerd `docker load`s that
 * archive. strata then creates the same three layers from that archive with its
 * overlay2 driver, as the layer store would (random 64-hex cache ids,
 * create(id, parent) + applyDiff in manifest order), and the two
 * `overlay2/` homes (the loading dockerd's and strata's) are compared level by level: which files each layer
 * dir holds, their modes and owners, the formats of `link`, `lower`, the
 * `l/` links and `committed`, and the content of every diff dir (overlay
 * whiteouts and opaque dirs included). Finally the merged view strata
 * mounts for a read-write layer on top is compared with what a container
 * of the image sees.
 *
 * What may differ, and why (each checked to be exactly that, see explainDiffs):
 * - diff/'s mtime and whiteout devices' mtimes: neither side takes them
 *   from the tar (dockerd's overlay2 extracts with archive.Unpack, which
 *   skips a "./" entry, and strata does the same in the overlay
 *   convention); they are each side's apply times.
 * - the values (not the presence) of trusted.overlay.uuid and
 *   trusted.overlay.origin, should overlayfs have written them while a
 *   layer was mounted read-write (docker load mounts nothing; the rule stays
 *   for when it does): a random fs UUID and a file handle of a lower dir.
 * merged/ is absent on both sides (put removes it).
 */
import assert from 'node:assert/strict'
import { randomBytes, createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { lstat, readFile, readdir, readlink } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { Readable } from 'node:stream'
import { test, type TestContext } from 'node:test'
import { readTar } from '../src/archive/tar/index.js'
import { chainIds, sha256Of } from '../src/digest/index.js'
import { Overlay2Driver } from '../src/graphdriver/overlay2/index.js'
import { MNT_DETACH, umount2 } from '../src/sys/index.js'
import { mountsAtOrUnder, requireDockerd, startDockerd } from './helpers/dockerd.js'
import { IMAGE_TAG, readDockerArchive, threeLayerArchive } from './helpers/docker-image.js'
import { requireRoot, requireTool } from './helpers/peers.js'
import { diffTrees, snapshotTree, type TreeEntry } from './helpers/tree.js'

interface Stat {
  type: string
  mode: string
  owner: string
  size: number
}

async function statOf(path: string): Promise<Stat> {
  const st = await lstat(path)
  const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : 'other'
  return { type, mode: (st.mode & 0o7777).toString(8).padStart(4, '0'), owner: `${st.uid}:${st.gid}`, size: type === 'file' ? st.size : 0 }
}

/** One layer dir as the comparison sees it: its own mode, and each entry's stat (content for the small files). */
interface LayerView {
  id: string
  self: Stat
  entries: Map<string, Stat>
  link: string
  lower?: string
  /** work/'s entries with their modes (empty until the layer is mounted read-write). */
  work?: string[]
  /** Where l/<link> points, and the link's own stat. */
  linkTarget: string
}

async function layerView(home: string, id: string): Promise<LayerView> {
  const dir = join(home, id)
  const entries = new Map<string, Stat>()
  for (const name of (await readdir(dir)).sort()) entries.set(name, await statOf(join(dir, name)))
  const link = await readFile(join(dir, 'link'), 'utf8')
  const view: LayerView = { id, self: await statOf(dir), entries, link, linkTarget: await readlink(join(home, 'l', link)) }
  if (entries.has('lower')) view.lower = await readFile(join(dir, 'lower'), 'utf8')
  if (entries.has('work')) {
    view.work = []
    for (const name of (await readdir(join(dir, 'work'))).sort()) {
      const st = await statOf(join(dir, 'work', name))
      view.work.push(`${name} ${st.type} ${st.mode} ${st.owner}`)
    }
  }
  return view
}

/** Mount points at or under `dirs` must be none; the message lists them. */
function assertNoMounts(dirs: string[], when: string): void {
  assert.deepEqual(mountsAtOrUnder(dirs), [], `mounts left under ${dirs.join(', ')} ${when}`)
}

/**
 * What a file listing compares: type, mode, owner, size and content of files, link targets,
 * and mtimes (seconds, tar's resolution) of everything but directories: a container's /etc is
 * its init layer's directory, and a merged dir's mtime is whichever layer's copy is on top.
 */
interface ListedEntry {
  type: string
  mode: string
  owner: string
  size: number
  linkname: string
  mtime: number
  sha256: string
}

function fmtListed(e: ListedEntry): string {
  return `${e.type} ${e.mode} ${e.owner} ${e.size} ${e.linkname} ${e.mtime} ${e.sha256.slice(0, 12)}`
}

/** A tar stream (busybox tar -c in a container) as a listing keyed by path without a leading or trailing '/'. */
async function listTar(tar: Buffer): Promise<Map<string, ListedEntry>> {
  const out = new Map<string, ListedEntry>()
  for await (const entry of readTar(Readable.from([tar]))) {
    const h = entry.header
    const hash = createHash('sha256')
    for await (const c of entry.body()) hash.update(c)
    const name = h.name.replace(/^\.?\/+/, '').replace(/\/+$/, '')
    out.set(name, {
      type: h.type,
      mode: h.mode.toString(8).padStart(4, '0'),
      owner: `${h.uid}:${h.gid}`,
      size: h.size,
      linkname: h.linkname,
      mtime: h.type === 'dir' ? 0 : h.mtime.sec,
      sha256: h.type === 'file' ? hash.digest('hex') : '',
    })
  }
  return out
}

/** The same listing of `roots` (relative) under a mounted tree `dir`. */
async function listTree(dir: string, roots: string[]): Promise<Map<string, ListedEntry>> {
  const out = new Map<string, ListedEntry>()
  const visit = async (rel: string): Promise<void> => {
    const abs = join(dir, rel)
    const st = await lstat(abs)
    const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : st.isCharacterDevice() ? 'char' : 'other'
    out.set(rel, {
      type,
      mode: (st.mode & 0o7777).toString(8).padStart(4, '0'),
      owner: `${st.uid}:${st.gid}`,
      size: type === 'file' ? st.size : 0,
      linkname: type === 'symlink' ? await readlink(abs) : '',
      mtime: type === 'dir' ? 0 : Math.floor(st.mtimeMs / 1000),
      sha256: type === 'file' ? createHash('sha256').update(await readFile(abs)).digest('hex') : '',
    })
    if (type === 'dir') for (const name of (await readdir(abs)).sort()) await visit(`${rel}/${name}`)
  }
  for (const r of roots) await visit(r)
  return out
}

function ms(start: number): string {
  return `${((performance.now() - start) / 1000).toFixed(1)} s`
}

test('overlay2 created by strata for a 3-layer image has the same file set and formats (link, lower, l/ links, committed) as dockerd\'s for the same image', { timeout: 300_000 }, async (t: TestContext) => {
  if (!requireRoot(t) || !requireDockerd(t) || !requireTool(t, 'tar', 'busybox')) return
  const started = performance.now()

  // Scratch for strata's data root.
  const scratch = mkdtempSync(join(tmpdir(), 'strata-test-ovl2-dockerd-'))
  const strataRoot = join(scratch, 'strata')
  let driver: Overlay2Driver | undefined
  const teardownStrata = async (): Promise<void> => {
    try {
      await driver?.cleanup()
    } finally {
      driver = undefined
      const left = mountsAtOrUnder([scratch])
      for (const mp of left) umount2(mp, MNT_DETACH)
      if (mountsAtOrUnder([scratch]).length === 0) rmSync(scratch, { recursive: true, force: true })
      assert.deepEqual(left, [], `mounts left under ${scratch}`)
    }
  }
  t.after(teardownStrata)

  // --- dockerd's image (built and saved by dockerd once, then cached) ----
  let phase = performance.now()
  const saved = await threeLayerArchive(t)
  const image = await readDockerArchive(saved)
  assert.equal(image.layers.length, 3, 'the image has 3 layers')
  image.layers.forEach((l, i) => assert.equal(sha256Of(l), image.diffIds[i], `layer ${i} tar hashes to its diffID`))
  t.diagnostic(`image ready in ${ms(phase)}: diffIDs ${image.diffIds.map((d) => d.slice(7, 19)).join(', ')}`)

  // --- a fresh dockerd loads the saved archive: the data root to compare ---
  // (docker load applies each layer tar with the driver's ApplyDiff, as strata does
  // below; the builder's own layers were container layers, committed.)
  phase = performance.now()
  const loaded = await startDockerd(t, { storageDriver: 'overlay2' })
  await loaded.docker(['load', '-i', saved])
  t.diagnostic(`second dockerd ${loaded.pid}: docker load took ${ms(phase)}`)

  // dockerd's cache ids, through the layer store: layerdb/sha256/<chainID>/cache-id.
  const chains = chainIds(image.diffIds)
  const dockerIds: string[] = []
  for (const chain of chains) {
    dockerIds.push((await readFile(join(loaded.dataRoot, 'image', 'overlay2', 'layerdb', 'sha256', chain.slice(7), 'cache-id'), 'utf8')).trim())
  }

  // --- strata creates the same layers -----------------------------------
  phase = performance.now()
  driver = await Overlay2Driver.open({ root: strataRoot })
  const strataIds: string[] = []
  let parent: string | null = null
  for (const [level, layer] of image.layers.entries()) {
    const id = randomBytes(32).toString('hex')
    await driver.create(id, parent)
    const applied = await driver.applyLayer(id, parent, Readable.from([layer]))
    assert.equal(applied.diffId, image.diffIds[level], `layer ${level}: applyLayer's diffId is the image's diffID`)
    // The size dockerd's layer store wrote for the same tar (its overlay2 ApplyDiff's directory.Size).
    const dockerSize = (await readFile(join(loaded.dataRoot, 'image', 'overlay2', 'layerdb', 'sha256', chains[level]!.slice(7), 'size'), 'utf8')).trim()
    assert.equal(String(applied.size), dockerSize, `layer ${level}: applyLayer's size equals dockerd's layerdb size`)
    strataIds.push(id)
    parent = id
  }
  t.diagnostic(`strata created and applied the 3 layers in ${ms(phase)}; sizes equal dockerd's layerdb sizes`)
  // --- the homes --------------------------------------------------------
  const dockerHome = join(loaded.dataRoot, 'overlay2')
  const strataHome = join(strataRoot, 'overlay2')
  for (const rel of ['', 'l']) {
    const [d, s] = [await statOf(join(dockerHome, rel)), await statOf(join(strataHome, rel))]
    assert.deepEqual(s, d, `overlay2/${rel} (strata vs dockerd)`)
    t.diagnostic(`overlay2/${rel}: ${d.type} ${d.mode} ${d.owner} on both`)
  }
  const homeNames = async (home: string, ids: string[]): Promise<string[]> =>
    (await readdir(home)).map((n) => (n === 'l' ? 'l' : ids.includes(n) ? `layer${ids.indexOf(n)}` : `other:${n}`)).sort()
  assert.deepEqual(await homeNames(strataHome, strataIds), await homeNames(dockerHome, dockerIds), 'the homes hold l/ and the three layers, nothing else')
  assert.equal((await readdir(join(dockerHome, 'l'))).length, 3, 'dockerd: l/ holds three links')
  assert.equal((await readdir(join(strataHome, 'l'))).length, 3, 'strata: l/ holds three links')

  // --- each layer dir ---------------------------------------------------
  const views = { docker: [] as LayerView[], strata: [] as LayerView[] }
  for (let level = 0; level < 3; level++) {
    views.docker.push(await layerView(dockerHome, dockerIds[level]!))
    views.strata.push(await layerView(strataHome, strataIds[level]!))
  }
  for (const [who, vs] of Object.entries(views)) {
    for (let level = 0; level < 3; level++) {
      const v = vs[level]!
      const what = `${who} layer ${level}`
      assert.match(v.link, /^[A-Z2-7]{26}$/, `${what}: link holds 26 base32 characters, no newline`)
      assert.equal(v.linkTarget, `../${v.id}/diff`, `${what}: l/${v.link} points at ../<id>/diff`)
      const expectedLower = vs.slice(0, level).reverse().map((p) => `l/${p.link}`).join(':')
      if (level === 0) assert.equal(v.lower, undefined, `${what}: a base layer has no lower file`)
      else assert.equal(v.lower, expectedLower, `${what}: lower lists the parents' links, nearest first, no newline`)
      const committed = v.entries.get('committed')
      if (committed !== undefined) assert.deepEqual([committed.mode, committed.size], ['0600', 0], `${what}: committed is empty, 0600`)
    }
  }
  for (let level = 0; level < 3; level++) {
    const [d, s] = [views.docker[level]!, views.strata[level]!]
    assert.deepEqual(s.self, d.self, `layer ${level}: the layer dir itself`)
    assert.deepEqual([...s.entries.keys()], [...d.entries.keys()], `layer ${level}: the entries of <id>/`)
    for (const [name, ds] of d.entries) {
      const ss = s.entries.get(name)!
      // link and lower sizes follow from their formats (checked above); the rest must match exactly.
      assert.deepEqual({ ...ss, size: name === 'link' || name === 'lower' ? 0 : ss.size }, { ...ds, size: name === 'link' || name === 'lower' ? 0 : ds.size }, `layer ${level}: <id>/${name}`)
    }
    assert.deepEqual(s.work, d.work, `layer ${level}: work/ content`)
    // merged/ exists only while a layer is mounted: dockerd's Put and strata's put both rmdir it.
    assert.ok(!d.entries.has('merged') && !s.entries.has('merged'), `layer ${level}: no merged/ left after put`)
    const linkStat = [await statOf(join(dockerHome, 'l', d.link)), await statOf(join(strataHome, 'l', s.link))]
    assert.deepEqual(linkStat[1], linkStat[0], `layer ${level}: the l/ symlink itself`)
    const entries = [...d.entries].map(([n, st]) => `${n}(${st.type} ${st.mode})`).join(' ')
    const work = d.work === undefined ? '' : `; work/: [${d.work.join(', ')}]`
    t.diagnostic(`layer ${level}: dir ${d.self.mode} ${d.self.owner}; ${entries}; lower ${d.lower === undefined ? 'absent' : `${d.lower.split(':').length} entr${d.lower.includes(':') ? 'ies' : 'y'}`}${work} — same on both`)
  }

  // --- the diff dirs' content -------------------------------------------
  for (let level = 0; level < 3; level++) {
    const dockerTree = await snapshotTree(join(dockerHome, dockerIds[level]!, 'diff'))
    const strataTree = await snapshotTree(join(strataHome, strataIds[level]!, 'diff'))
    const diffs = diffTrees(strataTree, dockerTree)
    const explained = explainDiffs(diffs, strataTree)
    if (explained.ignored.length > 0) t.diagnostic(`layer ${level} diff/: ignored ${explained.ignored.join('; ')}`)
    assert.deepEqual(explained.unexplained, [], `layer ${level}: diff/ trees differ (strata vs dockerd)`)
    const whiteouts = [...dockerTree].filter(([, e]) => e.type === 'char' && e.rdevMajor === 0 && e.rdevMinor === 0).map(([p]) => p)
    const opaque = [...dockerTree].filter(([, e]) => e.xattrs['trusted.overlay.opaque'] !== undefined).map(([p]) => p)
    t.diagnostic(`layer ${level} diff/: ${dockerTree.size} entries equal (whiteouts: ${whiteouts.join(', ') || 'none'}; opaque: ${opaque.join(', ') || 'none'})`)
  }

  // --- the merged view ---------------------------------------------------
  phase = performance.now()
  const { stdout } = await loaded.docker(['run', '--rm', '--network', 'none', IMAGE_TAG, 'tar', '-cf', '-', '/bin', '/etc', '/data', '/home'])
  const inContainer = await listTar(stdout)
  const rw = randomBytes(32).toString('hex')
  await driver.createReadWrite(rw, strataIds[2]!)
  const merged = await driver.get(rw)
  let mountedByStrata: Map<string, ListedEntry>
  try {
    mountedByStrata = await listTree(merged, ['bin', 'etc', 'data', 'home'])
  } finally {
    await driver.put(rw)
  }
  // A container's /etc/hosts, /etc/hostname and /etc/resolv.conf are dockerd's bind mounts
  // (over files its init layer <id>-init creates), /etc/mtab is that init layer's symlink, and
  // /etc itself is the init layer's directory; none of them is the image's.
  const fromInitLayer = new Set(['etc/hosts', 'etc/hostname', 'etc/resolv.conf', 'etc/mtab'])
  const mergedDiffs: string[] = []
  for (const p of [...new Set([...inContainer.keys(), ...mountedByStrata.keys()])].sort()) {
    if (fromInitLayer.has(p)) continue
    const [c, s] = [inContainer.get(p), mountedByStrata.get(p)]
    if (c === undefined || s === undefined || fmtListed(c) !== fmtListed(s)) {
      mergedDiffs.push(`${p}: container ${c === undefined ? '(absent)' : fmtListed(c)} / strata ${s === undefined ? '(absent)' : fmtListed(s)}`)
    }
  }
  assert.deepEqual(mergedDiffs, [], 'strata\'s merged view of the image differs from a container\'s')
  assert.ok(mountedByStrata.has('etc/hostname') && !mountedByStrata.has('etc/passwd') && mountedByStrata.has('data/two') && mountedByStrata.has('home/new'))
  t.diagnostic(`merged: ${mountedByStrata.size} entries under /bin /etc /data /home equal to the container's (${ms(phase)}; ignored the init layer's ${[...fromInitLayer].join(', ')})`)

  // --- teardown, checked ------------------------------------------------
  await driver.remove(rw)
  await teardownStrata()
  await loaded.stop()
  assertNoMounts([scratch, loaded.dataRoot, loaded.execRoot], 'after teardown')
  t.diagnostic(`total ${ms(started)}`)
})


/**
 * Splits diffTrees(strata, dockerd) lines into the ones with a known cause
 * and the rest. Each rule says why, and only matches the exact case it
 * explains.
 */
function explainDiffs(diffs: string[], strata: Map<string, TreeEntry>): { ignored: string[]; unexplained: string[] } {
  const ignored: string[] = []
  const unexplained: string[] = []
  for (const line of diffs) {
    const m = /^(.*): (mtime|mode|uid|gid|xattr) /.exec(line)
    const path = m?.[1]
    // diff/ itself takes nothing from the layer tar on either side: dockerd's overlay2 ApplyDiff
    // untars with archive.Unpack, which skips a "." entry, and so does strata in the overlay
    // convention. Its mode and owner are mkdir's on both sides (compared); its mtime is when each
    // side's apply created the last top-level entry in it.
    if (path === '.' && m?.[2] === 'mtime') {
      ignored.push(`${line} [diff/ keeps no time from the tar on either side: each side's apply time]`)
      continue
    }
    // Whiteouts: both sides mknod a 0/0 char device and chown it, and neither gives it the
    // .wh. entry's times, so its mtime is when each side applied the layer.
    const entry = path === undefined ? undefined : strata.get(path)
    if (m?.[2] === 'mtime' && entry?.type === 'char' && entry.rdevMajor === 0 && entry.rdevMinor === 0) {
      ignored.push(`${line} [whiteout device: its mtime is each side's apply time]`)
      continue
    }
    // Values overlayfs itself wrote while the layer was mounted read-write (see the get/put
    // above), present on both sides, differing only in value: the upper fs's random UUID, and a
    // file handle of each side's own lower dir.
    const x = /^(.*): xattr (trusted\.overlay\.(?:uuid|origin)) (0x[0-9a-f]+) != (0x[0-9a-f]+)$/.exec(line)
    if (x !== null) {
      ignored.push(`${x[1]}: ${x[2]} differs in value only [written by overlayfs at mount/lookup: per-filesystem UUID / lower file handle]`)
      continue
    }
    unexplained.push(line)
  }
  return { ignored, unexplained }
}

/**
 * The graph driver conformance suite: what every driver (vfs, overlay2,
 * btrfs) must do, as node:test cases. Modelled on moby's graphtest
 * (daemon/graphdriver/graphtest: CreateEmpty, CreateBase, CreateSnap,
 * DeepLayerRead, DiffApply, Changes) and containerd's snapshotter
 * testsuite (RemoveDirectoryInLowerLayer, Rename, Chown, RootPermission,
 * 128LayersMount), checked with the full-fidelity snapshotTree.
 *
 * Usage, in a test/*.test.ts file:
 *
 *   driverConformance('vfs', async () => {
 *     const root = await mkdtemp(...)
 *     return { driver: await openDriver(root, 'vfs'), root, teardown: () => rm(root, ...) }
 *   }, { skip: ['remove-with-children'] })
 *
 * Each case creates its own layers with random 64-hex ids and removes them
 * (children first) in a finally, so cases are independent and a failure
 * does not cascade. The driver is shared by all cases but one ("cleanup"
 * opens a second instance through `setup`, since cleanup may end a driver's
 * usefulness); after all cases the suite calls driver.cleanup() and then
 * teardown(). Needs root (mknod, chown, mounts); without it the suite is
 * skipped, except under CI where it fails.
 *
 * What the suite fixes that types.ts leaves open (drivers must agree):
 * - put without a matching get is INVALID_ARGUMENT (of a layer that does
 *   not exist: INVALID_ARGUMENT or NOT_FOUND), and names the layer;
 * - remove of a layer held by get is IN_USE;
 * - create of an existing id is ALREADY_EXISTS, with a missing parent
 *   NOT_FOUND, and leaves no layer behind;
 * - after cleanup(), nothing is held: every layer can be removed;
 * - a persistent get is not counted (a plain put after it is
 *   INVALID_ARGUMENT), and a persistent put of a layer not mounted, or of a
 *   base layer, is a no-op.
 * Sizes follow the driver's rule (DriverSuiteOptions.sizeRule).
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { readFileSync, realpathSync } from 'node:fs'
import { chmod, lchown, link, lstat, mkdir, mkdtemp, readFile, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { after, before, describe, test, type TestContext } from 'node:test'
import { gzipSync } from 'node:zlib'
import { changesNaive, type Change } from '../../src/archive/changes.js'
import { assembleTar, directoryFileGetter, readTarSplit } from '../../src/archive/tarsplit/index.js'
import { parseDigest, sha256Of } from '../../src/digest/index.js'
import { exportChanges } from '../../src/archive/export.js'
import { isErrno, isStrataError, type StrataErrorCode } from '../../src/errors/index.js'
import { copyTree } from '../../src/graphdriver/copy.js'
import type { GraphDriver } from '../../src/graphdriver/types.js'
import { lsetxattr, mknod, S_IFIFO } from '../../src/sys/index.js'
import { makeRichTree } from './fixtures.js'
import { asDockerLayerCarries, assertSameTree, snapshotTree, type TreeEntry } from './tree.js'

export interface DriverSuiteContext {
  driver: GraphDriver
  /** The data root the driver was opened on. */
  root: string
  /** Removes what setup made (the root, a loop filesystem, ...). Called after driver.cleanup(). */
  teardown: () => Promise<void>
}

export interface DriverSuiteOptions {
  /** A chain depth to run deep-read with in addition to 128 (e.g. 500 for overlay2). */
  maxDepth?: number
  /**
   * deep-read's base depth instead of 128, for drivers where depth means
   * nothing and every layer costs a mount under emulation (devicemapper in
   * the test VM: each layer is an independent thin device).
   */
  deepReadDepth?: number
  /** Case ids (SUITE_CASES) this driver cannot pass by design, each skipped with that reason. */
  skip?: string[]
  /**
   * Runs only these cases; the others are skipped with `reason` (a focused
   * run where the full suite is too slow for every `npm test`, as in the
   * emulated VM; the reason says where the rest runs).
   */
  only?: { cases: readonly SuiteCase[]; reason: string }
  /**
   * Which size the driver's applyDiff/applyLayer and diffSize report (see
   * LayerApplyResult in types.ts): 'content' (default), the bytes of the
   * regular files a tar carries (vfs, btrfs: the tar's entry sizes);
   * 'directory', moby's directory.Size of the layer's own files (overlay2:
   * non-directory lstat sizes, symlink target lengths included, each inode
   * once).
   */
  sizeRule?: SizeRule
  /**
   * Why link counts seen through the driver's mounts cannot be compared
   * (fuse-overlayfs reports a lower file's st_nlink from the names it has
   * looked up so far). Snapshots then take a hardlinked file's count from
   * the names sharing its inode in the tree (a layer holds all of them);
   * which names share an inode is still compared.
   */
  lazyLinkCounts?: string
}

export type SizeRule = 'content' | 'directory'

/** Every case id, for `skip`. */
export const SUITE_CASES = [
  'create-empty',
  'root-permission',
  'base-modes',
  'diff-base',
  'snapshot-sees-parent',
  'deep-read',
  'diff-apply',
  'apply-layer',
  'apply-layer-fails',
  'diff-files-dir',
  'persistent',
  'diff-release',
  'changes',
  'child-write-parent-unchanged',
  'read-write-layer',
  'remove-dir-in-lower',
  'rename',
  'chown',
  'remove-with-children',
  'remove-in-use',
  'refcount',
  'cleanup',
  'status',
  'metadata',
  'exists',
  'create-existing',
  'create-missing-parent',
] as const

export type SuiteCase = (typeof SUITE_CASES)[number]

/** A fresh layer id, like the layer store's cache ids. */
export function newLayerId(): string {
  return randomBytes(32).toString('hex')
}

// ---------------------------------------------------------------------------
// Helpers

/**
 * The layers and references one case takes, given back in its finally:
 * every outstanding get is put, then every created layer removed, newest
 * first (so children go before their parents).
 */
class Scratch {
  readonly #d: GraphDriver
  readonly #created: string[] = []
  readonly #held: string[] = []
  readonly #lazyLinkCounts: boolean

  constructor(driver: GraphDriver, lazyLinkCounts = false) {
    this.#d = driver
    this.#lazyLinkCounts = lazyLinkCounts
  }

  async create(parent: string | null = null): Promise<string> {
    const id = newLayerId()
    await this.#d.create(id, parent)
    this.#created.push(id)
    return id
  }

  async createReadWrite(parent: string | null = null): Promise<string> {
    const id = newLayerId()
    await this.#d.createReadWrite(id, parent)
    this.#created.push(id)
    return id
  }

  async get(id: string): Promise<string> {
    const path = await this.#d.get(id)
    this.#held.push(id)
    return path
  }

  async put(id: string): Promise<void> {
    const i = this.#held.lastIndexOf(id)
    assert.ok(i >= 0, `test bug: put of "${id}" which this case did not get`)
    this.#held.splice(i, 1)
    await this.#d.put(id)
  }

  async remove(id: string): Promise<void> {
    await this.#d.remove(id)
    const i = this.#created.indexOf(id)
    if (i >= 0) this.#created.splice(i, 1)
  }

  /** Runs `fn` on the layer's content (get … put). */
  async with<T>(id: string, fn: (dir: string) => Promise<T>): Promise<T> {
    const dir = await this.get(id)
    try {
      return await fn(dir)
    } finally {
      await this.put(id)
    }
  }

  async snapshot(id: string, withRoot = false): Promise<Map<string, TreeEntry>> {
    const snap = await this.with(id, (dir) => snapshotTree(dir, withRoot ? {} : { ignore: (rel) => rel === '.' }))
    // The settled count: every name of a layer's inode is in the layer.
    if (this.#lazyLinkCounts) for (const e of snap.values()) if (e.inodeGroup !== undefined) e.nlink = e.inodeGroup.split('|').length
    return snap
  }

  async dispose(): Promise<void> {
    const errors: unknown[] = []
    while (this.#held.length > 0) await this.#d.put(this.#held.pop()!).catch((e: unknown) => errors.push(e))
    while (this.#created.length > 0) await this.#d.remove(this.#created.pop()!).catch((e: unknown) => errors.push(e))
    if (errors.length > 0) throw new AggregateError(errors, `cleaning up the case's layers failed: ${errors.map((e) => (e as Error).message).join('; ')}`)
  }
}

/** Runs a case body with a Scratch, always disposing it; a body failure wins over a cleanup failure. */
/** Drivers whose suite said their mounts report lazy link counts (DriverSuiteOptions.lazyLinkCounts). */
const lazyLinkDrivers = new WeakSet<GraphDriver>()

async function withScratch(driver: GraphDriver, fn: (s: Scratch) => Promise<void>): Promise<void> {
  const s = new Scratch(driver, lazyLinkDrivers.has(driver))
  let failed = false
  try {
    await fn(s)
  } catch (err) {
    failed = true
    throw err
  } finally {
    try {
      await s.dispose()
    } catch (err) {
      if (!failed) throw err
    }
  }
}

/** Writes `content` to dir/rel with exactly `mode`, creating parent directories (0755). */
async function putFile(dir: string, rel: string, content: string | Buffer, mode = 0o644): Promise<void> {
  const p = join(dir, rel)
  await mkdir(join(p, '..'), { recursive: true })
  await writeFile(p, content)
  await chmod(p, mode)
}

async function mkdirMode(dir: string, rel: string, mode = 0o755): Promise<void> {
  await mkdir(join(dir, rel), { recursive: true })
  await chmod(join(dir, rel), mode)
}

/** Like mv(1): rename, or (a lower directory on overlayfs without redirect_dir says EXDEV) copy then delete. */
async function move(from: string, to: string): Promise<void> {
  try {
    await rename(from, to)
  } catch (err) {
    if (!isErrno(err, 'EXDEV')) throw err
    await copyTree(from, to)
    await rm(from, { recursive: true })
  }
}

/** Directory entries, without the lost+found a fresh ext4 or xfs root may have. */
async function names(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n !== 'lost+found').sort()
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path)
    return true
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return false
    throw err
  }
}

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** A layer tar of the whole tree `dir` (everything "A"), made by the archive engine (lossless headers), not by any driver. */
async function tarOf(dir: string): Promise<Buffer> {
  return drain(exportChanges(dir, await changesNaive(dir, null), { headers: 'lossless' }))
}

/** makeRichTree's tree as a layer tar, with its snapshot (root excluded), for cases that start from it. */
async function withRichTar(fn: (rich: { tar: Buffer; expected: Map<string, TreeEntry> }) => Promise<void>): Promise<void> {
  const src = await mkdtemp(join(tmpdir(), 'strata-test-suite-src-'))
  try {
    await makeRichTree(src)
    const expected = await snapshotTree(src, { ignore: (rel) => rel === '.' })
    await fn({ tar: await tarOf(src), expected })
  } finally {
    await rm(src, { recursive: true, force: true })
  }
}

/** Asserts `what` rejects with a StrataError of `code` (or one of several) whose message names `mention`. */
async function expectError(what: Promise<unknown>, code: StrataErrorCode | StrataErrorCode[], mention?: string): Promise<void> {
  const codes = Array.isArray(code) ? code : [code]
  await assert.rejects(what, (err: unknown) => {
    assert.ok(isStrataError(err), `expected a StrataError ${codes.join('/')}, got ${String(err)}`)
    assert.ok(codes.includes(err.code), `expected ${codes.join(' or ')}, got ${err.code}: ${err.message}`)
    if (mention !== undefined) assert.ok(err.message.includes(mention), `the message should name "${mention}": ${err.message}`)
    return true
  })
}

/** Mount points in /proc/self/mountinfo (field 5, octal escapes decoded). */
export function mountPoints(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split(' ')[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
}

function isMounted(path: string): boolean {
  return mountPoints().includes(path)
}

/**
 * Whether `path` (a layer's directory as get returned it) lies on a mount
 * the driver made: the deepest mount point containing it is inside the
 * driver's home. overlay2's merged/ is such a mount itself, devicemapper's
 * rootfs/ sits inside one (mnt/<id>); vfs and btrfs layers are on
 * whatever holds the home.
 */
function onDriverMount(home: string, path: string): boolean {
  const realHome = realpathSync(home)
  let deepest = ''
  for (const mp of mountPoints()) {
    if ((path === mp || path.startsWith(mp.endsWith('/') ? mp : `${mp}/`)) && mp.length > deepest.length) deepest = mp
  }
  return deepest.startsWith(`${realHome}/`)
}

/** Sum of regular file sizes in a snapshot, each hardlinked inode once: what a tar of the tree carries as content. */
function contentBytes(snap: Map<string, TreeEntry>): number {
  const groups = new Set<string>()
  let total = 0
  for (const e of snap.values()) {
    if (e.type !== 'file') continue
    if (e.inodeGroup !== undefined) {
      if (groups.has(e.inodeGroup)) continue
      groups.add(e.inodeGroup)
    }
    total += e.size
  }
  return total
}

/** moby's directory.Size of a snapshot: non-directory sizes (symlinks: their target's length), each inode once. */
function directoryBytes(snap: Map<string, TreeEntry>): number {
  const groups = new Set<string>()
  let total = 0
  for (const e of snap.values()) {
    const size = e.type === 'file' ? e.size : e.type === 'symlink' ? Buffer.byteLength(e.linkTarget ?? '') : 0
    if (size === 0) continue
    if (e.inodeGroup !== undefined) {
      if (groups.has(e.inodeGroup)) continue
      groups.add(e.inodeGroup)
    }
    total += size
  }
  return total
}

/** The size a driver following `rule` reports for a layer whose own files are `snap`. */
function ruleBytes(rule: SizeRule, snap: Map<string, TreeEntry>): number {
  return rule === 'directory' ? directoryBytes(snap) : contentBytes(snap)
}

/**
 * Runs `fn` on the directory holding `id`'s own files: holdDiffFiles when the
 * driver has it (it must mount to read them), else diffFilesDir.
 */
async function withDiffFiles<T>(driver: GraphDriver, id: string, fn: (dir: string) => Promise<T>): Promise<T> {
  if (driver.holdDiffFiles === undefined) return fn(await driver.diffFilesDir(id))
  const files = await driver.holdDiffFiles(id)
  try {
    return await fn(files.dir)
  } finally {
    await files.release()
  }
}

function formatted(changes: Change[]): string[] {
  return changes.map((c) => `${c.kind} ${c.path}`)
}

// ---------------------------------------------------------------------------
// The suite

/**
 * Registers the conformance cases for one driver. `setup` is called once
 * before the cases (and once more by the "cleanup" case, for a second
 * instance it disposes itself).
 */
export function driverConformance(name: string, setup: () => Promise<DriverSuiteContext>, opts: DriverSuiteOptions = {}): void {
  const skip = new Set(opts.skip ?? [])
  const sizeRule: SizeRule = opts.sizeRule ?? 'content'
  for (const s of skip) {
    if (!(SUITE_CASES as readonly string[]).includes(s)) throw new Error(`driverConformance(${name}): unknown case "${s}" in skip (known: ${SUITE_CASES.join(', ')})`)
  }
  const only = opts.only === undefined ? undefined : new Set<string>(opts.only.cases)
  const isRoot = process.getuid?.() === 0
  const suiteSkip = !isRoot && !process.env.CI ? 'needs root' : false

  describe(`${name} driver conformance`, { skip: suiteSkip }, () => {
    let ctx: DriverSuiteContext | undefined
    const driver = (): GraphDriver => {
      assert.ok(ctx !== undefined, 'setup did not complete')
      return ctx.driver
    }

    before(async () => {
      if (!isRoot) throw new Error('the driver conformance suite needs root (CI is set, so this fails instead of skipping)')
      ctx = await setup()
      if (opts.lazyLinkCounts !== undefined) lazyLinkDrivers.add(ctx.driver)
    })

    after(async () => {
      if (ctx === undefined) return
      try {
        await ctx.driver.cleanup()
      } finally {
        await ctx.teardown()
      }
    })

    const tcase = (id: SuiteCase, title: string, fn: (t: TestContext) => Promise<void>): void => {
      const why = skip.has(id) ? `the ${name} driver cannot do this by design` : only !== undefined && !only.has(id) ? opts.only!.reason : false
      test(`${title} [${id}]`, { skip: why }, fn)
    }

    tcase('create-empty', 'an empty base layer is an empty 0755 root:root directory', async () => {
      await withScratch(driver(), async (s) => {
        const id = await s.create()
        assert.equal(await driver().exists(id), true)
        const dir = await s.get(id)
        const st = await lstat(dir)
        assert.ok(st.isDirectory(), `${dir} is not a directory`)
        assert.equal((st.mode & 0o7777).toString(8), '755')
        assert.equal(st.uid, 0)
        assert.equal(st.gid, 0)
        assert.deepEqual(await names(dir), [])
        await s.put(id)
        await s.remove(id)
        assert.equal(await driver().exists(id), false)
      })
    })

    tcase('root-permission', 'layer roots are 0755 root:root, read-only or read-write, base or child', async () => {
      await withScratch(driver(), async (s) => {
        const base = await s.create()
        const rwBase = await s.createReadWrite()
        const child = await s.create(base)
        const rwChild = await s.createReadWrite(base)
        for (const id of [base, rwBase, child, rwChild]) {
          await s.with(id, async (dir) => {
            const st = await lstat(dir)
            assert.ok(st.isDirectory())
            assert.equal((st.mode & 0o7777).toString(8), '755', `root of ${id}`)
            assert.equal(`${st.uid}:${st.gid}`, '0:0', `owner of the root of ${id}`)
          })
        }
      })
    })

    tcase('base-modes', 'a base layer applied from a tar keeps every type, mode, owner, time, xattr and hardlink', async () => {
      await withRichTar(async ({ tar, expected }) => {
        await withScratch(driver(), async (s) => {
          const base = await s.create()
          const size = await driver().applyDiff(base, null, Readable.from([tar]))
          assert.equal(size, ruleBytes(sizeRule, expected), `applyDiff returns the ${sizeRule} size of what it wrote`)
          assertSameTree(await s.snapshot(base), expected, 'the base layer differs from the tree its tar was made of')
          assert.equal(await driver().diffSize(base, null), size, 'diffSize(base, null) equals what applyDiff returned')
        })
      })
    })

    tcase('diff-base', 'diff of a base layer against nothing, applied to a fresh base layer, gives the same tree (exactly with lossless headers)', async () => {
      await withRichTar(async ({ tar }) => {
        await withScratch(driver(), async (s) => {
          const base = await s.create()
          await driver().applyDiff(base, null, Readable.from([tar]))
          const diff = await drain(await driver().diff(base, null))
          const copy = await s.create()
          await driver().applyDiff(copy, null, Readable.from([diff]))
          assertSameTree(asDockerLayerCarries(await s.snapshot(copy)), asDockerLayerCarries(await s.snapshot(base)), 'as dockerd headers carry it')
          const lossless = await drain(await driver().diff(base, null, { headers: 'lossless' }))
          const exact = await s.create()
          await driver().applyDiff(exact, null, Readable.from([lossless]))
          assertSameTree(await s.snapshot(exact), await s.snapshot(base), 'with lossless headers')
        })
      })
    })

    tcase('snapshot-sees-parent', 'a child layer (read-only or read-write) shows its parent exactly', async () => {
      await withRichTar(async ({ tar }) => {
        await withScratch(driver(), async (s) => {
          const base = await s.create()
          await driver().applyDiff(base, null, Readable.from([tar]))
          const want = await s.snapshot(base)
          const child = await s.create(base)
          assertSameTree(await s.snapshot(child), want, 'read-only child differs from its parent')
          const rw = await s.createReadWrite(child)
          assertSameTree(await s.snapshot(rw), want, 'read-write grandchild differs from its grandparent')
        })
      })
    })

    const depths = [opts.deepReadDepth ?? 128]
    if (opts.maxDepth !== undefined && opts.maxDepth > 128) depths.push(opts.maxDepth)
    for (const depth of depths) {
      tcase('deep-read', `the top of ${depth} stacked layers sees a file from each, and the newest version of a file all of them wrote`, async () => {
        await withScratch(driver(), async (s) => {
          let parent: string | null = null
          for (let n = 0; n < depth; n++) {
            const id = await s.create(parent)
            await s.with(id, async (dir) => {
              await putFile(dir, `layer-${n}`, `${n}\n`)
              await putFile(dir, 'overwritten', `written by layer ${n}\n`)
            })
            parent = id
          }
          const top = await s.createReadWrite(parent)
          await s.with(top, async (dir) => {
            const want = Array.from({ length: depth }, (_, n) => `layer-${n}`)
            want.push('overwritten')
            assert.deepEqual(await names(dir), want.sort())
            for (let n = 0; n < depth; n++) assert.equal(await readFile(join(dir, `layer-${n}`), 'utf8'), `${n}\n`, `content of layer-${n}`)
            assert.equal(await readFile(join(dir, 'overwritten'), 'utf8'), `written by layer ${depth - 1}\n`)
          })
        })
      })
    }

    tcase('diff-apply', "diff(upper, base) applied to a fresh child of base gives upper's tree, and diffSize is the applied size", async () => {
      await withScratch(driver(), async (s) => {
        const base = await s.create()
        await s.with(base, async (dir) => {
          for (let i = 0; i < 10; i++) await putFile(dir, `files/f-${i}`, randomBytes(500 + i * 300))
          await putFile(dir, 'a/b/c/file', 'deep\n')
          await putFile(dir, 'file-remove.txt', 'This file should get removed in upper!\n')
          await putFile(dir, 'var/lib/x', 'x\n')
          await putFile(dir, 'var/lib/sub/y', 'y\n')
          await putFile(dir, 'keep/link-target', 'target\n')
          await putFile(dir, 'chmod-me', 'chmod\n')
          await putFile(dir, 'chown-me', 'chown\n')
        })
        const upper = await s.create(base)
        const changedFiles = await s.with(upper, async (dir) => {
          for (let i = 0; i < 5; i++) await putFile(dir, `new/f-${i}`, randomBytes(700 + i * 1000))
          await putFile(dir, 'files/f-0', randomBytes(4321))
          lsetxattr(join(dir, 'files/f-1'), 'user.upper', 'set in upper')
          await rm(join(dir, 'file-remove.txt'))
          await rm(join(dir, 'var/lib'), { recursive: true })
          await chmod(join(dir, 'chmod-me'), 0o600)
          await lchown(join(dir, 'chown-me'), 1000, 1000)
          await symlink('../keep/link-target', join(dir, 'new/link'))
          await putFile(dir, 'new/hl-a', 'one inode, two names\n')
          await link(join(dir, 'new/hl-a'), join(dir, 'new/hl-b'))
          await putFile(dir, 'new/suid', '#!/bin/sh\n', 0o755)
          await chmod(join(dir, 'new/suid'), 0o4755)
          mknod(join(dir, 'new/fifo'), S_IFIFO | 0o600)
          // The regular files diff must carry, each inode once (and the symlink, for the directory size).
          const files = [...Array.from({ length: 5 }, (_, i) => `new/f-${i}`), 'files/f-0', 'files/f-1', 'chmod-me', 'chown-me', 'new/hl-a', 'new/suid']
          return sizeRule === 'directory' ? [...files, 'new/link'] : files
        })
        let wantBytes = 0
        await s.with(upper, async (dir) => {
          for (const rel of changedFiles) wantBytes += (await lstat(join(dir, rel))).size
        })

        const diffSize = await driver().diffSize(upper, base)
        assert.equal(diffSize, wantBytes, sizeRule === 'directory' ? 'diffSize is the size of the added and changed files and symlinks' : 'diffSize is the size of the added and changed regular files')
        const tar = await drain(await driver().diff(upper, base))
        const fresh = await s.create(base)
        const applied = await driver().applyDiff(fresh, base, Readable.from([tar]))
        assert.equal(applied, diffSize, 'applyDiff returns what diffSize said')
        assertSameTree(asDockerLayerCarries(await s.snapshot(fresh)), asDockerLayerCarries(await s.snapshot(upper)), 'the re-applied layer differs from the original')
        const exact = await s.create(base)
        await driver().applyDiff(exact, base, Readable.from([await drain(await driver().diff(upper, base, { headers: 'lossless' }))]))
        assertSameTree(await s.snapshot(exact), await s.snapshot(upper), 'the layer re-applied from a lossless diff differs from the original')
        assert.deepEqual(formatted(await driver().changes(fresh, base)), formatted(await driver().changes(upper, base)))
      })
    })

    tcase('apply-layer', 'applyLayer reports the diffID, digests, sizes and tar-split of what it applied, plain or gzip', async () => {
      await withRichTar(async ({ tar, expected }) => {
        await withScratch(driver(), async (s) => {
          const diffId = sha256Of(tar)
          const base = await s.create()
          const lines: string[] = []
          const plain = await driver().applyLayer(base, null, Readable.from([tar]), { tarSplit: (l) => lines.push(l), expectedDiffId: diffId })
          assert.equal(plain.diffId, diffId, 'diffId is the sha256 of the tar')
          assert.equal(plain.digest, diffId, 'an uncompressed tar is its own digest')
          assert.equal(plain.compression, 'none')
          assert.equal(plain.tarSize, tar.length)
          assert.equal(plain.compressedSize, tar.length)
          assert.equal(plain.size, ruleBytes(sizeRule, expected), `size is the ${sizeRule} size`)
          assert.ok(lines.length > 0, 'tar-split lines were recorded')
          // The tar-split and the layer's own files rebuild the tar byte for byte.
          const entries = readTarSplit(Readable.from([lines.join('\n') + '\n']), false)
          const rebuilt = await withDiffFiles(driver(), base, async (dir) => {
            const chunks: Buffer[] = []
            for await (const c of assembleTar(entries, directoryFileGetter(dir))) chunks.push(c)
            return Buffer.concat(chunks)
          })
          assert.equal(sha256Of(rebuilt), diffId, 'the tar rebuilt from tar-split and diffFilesDir hashes to the diffID')
          assertSameTree(await s.snapshot(base), expected)

          const gz = gzipSync(tar)
          const other = await s.create()
          const zipped = await driver().applyLayer(other, null, Readable.from([gz]))
          assert.equal(zipped.diffId, diffId, 'the diffID is of the uncompressed tar')
          assert.equal(zipped.digest, sha256Of(gz), 'the digest is of the bytes as given')
          assert.equal(zipped.compression, 'gzip')
          assert.equal(zipped.compressedSize, gz.length)
          assert.equal(zipped.size, plain.size)
          assert.equal(await driver().applyDiff(await s.create(), null, Readable.from([tar])), plain.size, 'applyDiff returns applyLayer\'s size')
        })
      })
    })

    tcase('apply-layer-fails', 'a failed applyLayer (digest mismatch, bad tar) throws and leaves the layer held by nobody, removable', async () => {
      await withRichTar(async ({ tar }) => {
        await withScratch(driver(), async (s) => {
          const base = await s.create()
          const wrong = parseDigest(`sha256:${'0'.repeat(64)}`)
          await expectError(driver().applyLayer(base, null, Readable.from([tar]), { expectedDiffId: wrong }), 'DIGEST_MISMATCH')
          assert.equal(await driver().exists(base), true, 'the layer is still there for the caller to remove')
          await s.remove(base)

          const parent = await s.create()
          const child = await s.create(parent)
          const garbage = Buffer.alloc(1024, 0x41) // not a tar header: its checksum is wrong
          await assert.rejects(driver().applyLayer(child, parent, Readable.from([garbage])))
          assert.equal(await driver().exists(child), true)
          assert.deepEqual(await driver().mountedLayers(), [], 'nothing is left mounted')
          await s.remove(child)
        })
      })
    })

    tcase('diff-files-dir', "diffFilesDir (or holdDiffFiles) holds the files a layer added or changed; NOT_FOUND for an unknown layer", async () => {
      await withScratch(driver(), async (s) => {
        const base = await s.create()
        await s.with(base, (dir) => putFile(dir, 'etc/base', 'base\n'))
        const child = await s.create(base)
        await s.with(child, async (dir) => {
          await putFile(dir, 'etc/child', 'child\n')
          await putFile(dir, 'etc/base', 'changed\n')
        })
        await withDiffFiles(driver(), child, async (dir) => {
          assert.equal(await readFile(join(dir, 'etc/child'), 'utf8'), 'child\n')
          assert.equal(await readFile(join(dir, 'etc/base'), 'utf8'), 'changed\n')
          // Readable without a mount, unless the driver can only read a layer through one (holdDiffFiles).
          if (driver().holdDiffFiles === undefined) assert.ok(!isMounted(dir), 'diffFilesDir is not a mount')
        })
        assert.equal(await withDiffFiles(driver(), base, (dir) => readFile(join(dir, 'etc/base'), 'utf8')), 'base\n')
        const unknown = newLayerId()
        await expectError(driver().diffFilesDir(unknown), 'NOT_FOUND', unknown)
        if (driver().holdDiffFiles !== undefined) {
          await expectError(driver().holdDiffFiles!(unknown), 'NOT_FOUND', unknown)
          // The hold is given back: the layer can go.
          assert.deepEqual(await driver().mountedLayers(), [], 'a released hold left a mount')
        }
      })
    })

    tcase('persistent', 'a persistent get is not counted; its persistent put releases it, and is a no-op when nothing is mounted', async () => {
      await withScratch(driver(), async (s) => {
        const base = await s.create()
        await s.with(base, (dir) => putFile(dir, 'f', 'f\n'))
        const child = await s.create(base)
        const path = await driver().get(child, { persistent: true })
        let released = false
        try {
          assert.equal(await readFile(join(path, 'f'), 'utf8'), 'f\n')
          await expectError(driver().put(child), 'INVALID_ARGUMENT', child)
          const mounts = onDriverMount(driver().home, path)
          assert.deepEqual((await driver().mountedLayers()).includes(child), mounts, 'mountedLayers lists the layer iff it is mounted')
          if (mounts) await expectError(driver().remove(child), 'IN_USE', child)
          // A counted get on top of it: its put leaves the persistent mount alone.
          assert.equal(await s.get(child), path)
          await s.put(child)
          if (mounts) assert.ok(onDriverMount(driver().home, path), 'a counted put took down a persistent mount')
          await driver().put(child, { persistent: true })
          released = true
          assert.ok(!onDriverMount(driver().home, path), 'the persistent put unmounted the layer')
          assert.ok(!(await driver().mountedLayers()).includes(child))
        } finally {
          if (!released) await driver().put(child, { persistent: true })
        }
        // Nothing mounted (any more), a base layer: no-ops.
        await driver().put(child, { persistent: true })
        await driver().put(base, { persistent: true })
        // A base layer is never mounted: a persistent get is its files' dir, uncounted.
        assert.equal(await driver().get(base, { persistent: true }), await driver().diffFilesDir(base))
        await expectError(driver().put(base), 'INVALID_ARGUMENT', base)
        await driver().put(base, { persistent: true })
        await expectError(driver().put(newLayerId(), { persistent: true }), ['NOT_FOUND', 'INVALID_ARGUMENT'])
      })
    })

    tcase('diff-release', 'a diff stream holds its layer only until it ends or is destroyed', async () => {
      await withScratch(driver(), async (s) => {
        const base = await s.create()
        await s.with(base, (dir) => putFile(dir, 'big', randomBytes(4 * 1024 * 1024)))
        const upper = await s.create(base)
        await s.with(upper, (dir) => putFile(dir, 'big', randomBytes(4 * 1024 * 1024)))

        // Read to the end.
        await drain(await driver().diff(upper, base))
        // Destroyed after the first chunk.
        const partial = await driver().diff(upper, base)
        await new Promise<void>((resolve, reject) => {
          partial.once('error', reject)
          partial.once('data', () => {
            partial.destroy()
            resolve()
          })
        })
        await new Promise((resolve) => (partial.closed ? resolve(undefined) : partial.once('close', resolve)))
        // Never read at all.
        const unread = await driver().diff(upper, null)
        unread.destroy()
        await new Promise((resolve) => (unread.closed ? resolve(undefined) : unread.once('close', resolve)))

        // Every reference is back: removal is not refused as IN_USE.
        await s.remove(upper)
        await s.remove(base)
      })
    })

    tcase('changes', 'changes lists exactly the additions, modifications and deletions, sorted by path', async () => {
      await withScratch(driver(), async (s) => {
        const base = await s.create()
        await s.with(base, async (dir) => {
          await putFile(dir, 'etc/passwd', 'root:x:0:0::/root:/bin/sh\n')
          await putFile(dir, 'etc/hosts', '127.0.0.1 localhost\n')
          await putFile(dir, 'bin/tool', 'tool\n', 0o755)
          await putFile(dir, 'bin/gone', 'gone\n', 0o755)
          await putFile(dir, 'old', 'old\n')
          await putFile(dir, 'deldir/a', 'a\n')
          await putFile(dir, 'deldir/b/c', 'c\n')
          await putFile(dir, 'home/user/.profile', 'profile\n')
          await putFile(dir, 'owned', 'owned\n')
          await putFile(dir, 'renamed-from', 'renamed\n')
          await putFile(dir, 'untouched/file', 'same\n')
        })
        const child = await s.create(base)
        await s.with(child, async (dir) => {
          await putFile(dir, 'added', 'new\n')
          await putFile(dir, 'etc/passwd', 'root:x:0:0::/root:/bin/bash\n')
          await putFile(dir, 'etc/added', 'new\n')
          await chmod(join(dir, 'bin/tool'), 0o700)
          await rm(join(dir, 'bin/gone'))
          await rm(join(dir, 'old'))
          await rm(join(dir, 'deldir'), { recursive: true })
          await putFile(dir, 'home/newdir/file', 'new\n')
          await lchown(join(dir, 'owned'), 1000, 1000)
          await rename(join(dir, 'renamed-from'), join(dir, 'renamed-to'))
        })
        assert.deepEqual(formatted(await driver().changes(child, base)), [
          'A /added',
          'C /bin',
          'D /bin/gone',
          'C /bin/tool',
          'D /deldir',
          'C /etc',
          'A /etc/added',
          'C /etc/passwd',
          'C /home',
          'A /home/newdir',
          'A /home/newdir/file',
          'D /old',
          'C /owned',
          'D /renamed-from',
          'A /renamed-to',
        ])
        // A layer with no changes of its own has none.
        const same = await s.create(child)
        assert.deepEqual(await driver().changes(same, child), [])
      })
    })

    tcase('child-write-parent-unchanged', "whatever a child does, its parent's tree stays exactly as it was", async () => {
      await withRichTar(async ({ tar }) => {
        await withScratch(driver(), async (s) => {
          const base = await s.create()
          await driver().applyDiff(base, null, Readable.from([tar]))
          const before = await s.snapshot(base, true)
          const child = await s.createReadWrite(base)
          await s.with(child, async (dir) => {
            await writeFile(join(dir, 'files/one'), 'changed')
            await writeFile(join(dir, 'hard/third'), 'changed through one of three hardlinks')
            await chmod(join(dir, 'perms/setuid'), 0o755)
            await lchown(join(dir, 'owners/u1000'), 0, 0)
            await rm(join(dir, 'files/big'))
            await rm(join(dir, 'dirs'), { recursive: true })
            await putFile(dir, 'added/file', 'new')
            lsetxattr(join(dir, 'xattr/file'), 'user.comment', 'changed')
            await chmod(dir, 0o700)
          })
          assertSameTree(await s.snapshot(base, true), before, 'the parent changed')
        })
      })
    })

    tcase('read-write-layer', "a read-write layer's writes show in its diff, and nowhere else", async () => {
      await withScratch(driver(), async (s) => {
        const base = await s.create()
        await s.with(base, (dir) => putFile(dir, 'etc/config', 'v1\n'))
        const before = await s.snapshot(base, true)
        const rw = await s.createReadWrite(base)
        await s.with(rw, async (dir) => {
          await putFile(dir, 'etc/config', 'v2\n')
          // An addition next to the modification: a modified file alone makes naive
          // drivers report its directory and overlay2 not (docker does the same).
          await putFile(dir, 'etc/new', 'new\n')
          await putFile(dir, 'tmp/scratch', 'scratch\n')
        })
        const sibling = await s.createReadWrite(base)
        assert.equal(await s.with(sibling, (dir) => readFile(join(dir, 'etc/config'), 'utf8')), 'v1\n', 'a sibling sees the write')
        assertSameTree(await s.snapshot(base, true), before, 'the parent changed')
        assert.deepEqual(formatted(await driver().changes(rw, base)), ['C /etc', 'C /etc/config', 'A /etc/new', 'A /tmp', 'A /tmp/scratch'])
        const tar = await drain(await driver().diff(rw, base))
        const image = await s.create(base)
        await driver().applyDiff(image, base, Readable.from([tar]))
        assertSameTree(asDockerLayerCarries(await s.snapshot(image)), asDockerLayerCarries(await s.snapshot(rw)), 'the committed layer differs from the container layer')
      })
    })

    tcase('remove-dir-in-lower', 'a directory removed in a lower layer stays removed above it; one recreated holds only its new content', async () => {
      await withScratch(driver(), async (s) => {
        const base = await s.create()
        await s.with(base, async (dir) => {
          await putFile(dir, 'lib/hidden', 'hidden\n')
          await putFile(dir, 'lib/sub/deep', 'deep\n')
          await putFile(dir, 'gone/a', 'a\n')
          await putFile(dir, 'stays', 'stays\n')
        })
        const child = await s.create(base)
        await s.with(child, async (dir) => {
          await rm(join(dir, 'lib'), { recursive: true })
          await putFile(dir, 'lib/newfile', 'new\n')
          await rm(join(dir, 'gone'), { recursive: true })
        })
        const grandchild = await s.create(child)
        for (const id of [child, grandchild]) {
          await s.with(id, async (dir) => {
            assert.deepEqual(await names(dir), ['lib', 'stays'])
            assert.deepEqual(await names(join(dir, 'lib')), ['newfile'])
          })
        }
        await s.with(base, async (dir) => {
          assert.deepEqual(await names(dir), ['gone', 'lib', 'stays'])
          assert.deepEqual(await names(join(dir, 'lib')), ['hidden', 'sub'])
        })
      })
    })

    tcase('rename', 'files and directories renamed in a child appear only under their new names above it', async () => {
      await withScratch(driver(), async (s) => {
        const base = await s.create()
        await s.with(base, async (dir) => {
          await putFile(dir, 'dir1/f1', 'f1\n')
          await putFile(dir, 'dir1/sub/f2', 'f2\n')
          await putFile(dir, 'somefile', 'some\n')
          await putFile(dir, 'a/file', 'a file\n')
        })
        const before = await s.snapshot(base, true)
        const child = await s.create(base)
        await s.with(child, async (dir) => {
          await rename(join(dir, 'somefile'), join(dir, 'renamed'))
          await mkdirMode(dir, 'b')
          await rename(join(dir, 'a/file'), join(dir, 'b/file'))
          await move(join(dir, 'dir1'), join(dir, 'dir2'))
        })
        const grandchild = await s.create(child)
        for (const id of [child, grandchild]) {
          await s.with(id, async (dir) => {
            assert.deepEqual(await names(dir), ['a', 'b', 'dir2', 'renamed'])
            assert.deepEqual(await names(join(dir, 'a')), [])
            assert.equal(await readFile(join(dir, 'renamed'), 'utf8'), 'some\n')
            assert.equal(await readFile(join(dir, 'b/file'), 'utf8'), 'a file\n')
            assert.equal(await readFile(join(dir, 'dir2/f1'), 'utf8'), 'f1\n')
            assert.equal(await readFile(join(dir, 'dir2/sub/f2'), 'utf8'), 'f2\n')
          })
        }
        assertSameTree(await s.snapshot(base, true), before, 'the parent changed')
      })
    })

    tcase('chown', "owners changed in a child show in it and above it, never in the parent", async () => {
      await withScratch(driver(), async (s) => {
        const base = await s.create()
        await s.with(base, async (dir) => {
          await mkdirMode(dir, 'dir', 0o700)
          await putFile(dir, 'dir/file', 'file\n')
          await symlink('dir/file', join(dir, 'link'))
        })
        const child = await s.create(base)
        await s.with(child, async (dir) => {
          await lchown(join(dir, 'dir/file'), 1000, 1001)
          await lchown(join(dir, 'dir'), 1002, 1003)
          await lchown(join(dir, 'link'), 1004, 1005)
        })
        const owners = async (dir: string): Promise<string[]> =>
          Promise.all(['dir', 'dir/file', 'link'].map(async (rel) => {
            const st = await lstat(join(dir, rel))
            return `${rel} ${st.uid}:${st.gid}`
          }))
        const grandchild = await s.create(child)
        for (const id of [child, grandchild]) assert.deepEqual(await s.with(id, owners), ['dir 1002:1003', 'dir/file 1000:1001', 'link 1004:1005'])
        assert.deepEqual(await s.with(base, owners), ['dir 0:0', 'dir/file 0:0', 'link 0:0'])
        assert.equal(await s.with(child, async (dir) => ((await lstat(join(dir, 'dir'))).mode & 0o7777).toString(8)), '700', 'chown kept the mode')
      })
    })

    tcase('remove-with-children', 'removing a layer that has children is refused (IN_USE)', async () => {
      await withScratch(driver(), async (s) => {
        const base = await s.create()
        const child = await s.create(base)
        await expectError(driver().remove(base), 'IN_USE', base)
        assert.equal(await driver().exists(base), true)
        await s.with(child, async (dir) => assert.ok(await exists(dir)))
        await s.remove(child)
        await s.remove(base)
        assert.equal(await driver().exists(base), false)
      })
    })

    tcase('remove-in-use', 'removing a layer held by get is refused (IN_USE) until it is put', async () => {
      await withScratch(driver(), async (s) => {
        const base = await s.create()
        await s.get(base)
        await expectError(driver().remove(base), 'IN_USE', base)
        assert.equal(await driver().exists(base), true)
        await s.put(base)
        await s.remove(base)
        assert.equal(await driver().exists(base), false)
      })
    })

    tcase('refcount', 'get/put are reference counted: the layer stays available until the last put; put without get is an error', async () => {
      await withScratch(driver(), async (s) => {
        const base = await s.create()
        await s.with(base, (dir) => putFile(dir, 'base-file', 'base\n'))
        const child = await s.create(base)
        const p1 = await s.get(child)
        const p2 = await s.get(child)
        assert.equal(p2, p1, 'both gets return the same path')
        // A driver that mounts shows it in mountinfo; then the mount must follow the count.
        const mounts = onDriverMount(driver().home, p1)
        await s.put(child)
        assert.equal(await readFile(join(p1, 'base-file'), 'utf8'), 'base\n', 'content gone after the first of two puts')
        if (mounts) assert.ok(onDriverMount(driver().home, p1), `${p1} was unmounted by the first of two puts`)
        await s.put(child)
        if (mounts) assert.ok(!onDriverMount(driver().home, p1), `${p1} is still mounted after the last put`)
        await expectError(driver().put(child), 'INVALID_ARGUMENT', child)
        const unknown = newLayerId()
        await expectError(driver().put(unknown), ['INVALID_ARGUMENT', 'NOT_FOUND'], unknown)
        // Usable again after all that.
        await s.with(child, async (dir) => assert.equal(await readFile(join(dir, 'base-file'), 'utf8'), 'base\n'))
      })
    })

    tcase('cleanup', 'cleanup unmounts everything the driver mounted and releases every reference', async () => {
      const own = await setup()
      if (opts.lazyLinkCounts !== undefined) lazyLinkDrivers.add(own.driver)
      try {
        const d = own.driver
        await withScratch(d, async (s) => {
          const base = await s.create()
          await s.with(base, (dir) => putFile(dir, 'f', 'f\n'))
          const child = await s.create(base)
          const rw = await s.createReadWrite(child)
          // Taken directly (not through the scratch): cleanup is what gives them back.
          await d.get(base)
          await d.get(child)
          await d.get(rw)
          await d.get(rw)
          await d.cleanup()
          const home = d.home.endsWith('/') ? d.home.slice(0, -1) : d.home
          const left = mountPoints().filter((m) => m === home || m.startsWith(`${home}/`))
          assert.deepEqual(left, [], `mounts under ${home} survive cleanup`)
          await s.remove(rw)
          await s.remove(child)
          await s.remove(base)
        })
      } finally {
        try {
          await own.driver.cleanup()
        } finally {
          await own.teardown()
        }
      }
    })

    tcase('status', 'status is a list of [name, value] string pairs', async () => {
      const lines = await driver().status()
      assert.ok(Array.isArray(lines))
      for (const line of lines) {
        assert.ok(Array.isArray(line) && line.length === 2, `not a pair: ${JSON.stringify(line)}`)
        assert.equal(typeof line[0], 'string')
        assert.equal(typeof line[1], 'string')
      }
    })

    tcase('metadata', 'getMetadata of a layer is a record of strings; of an unknown layer, NOT_FOUND', async () => {
      await withScratch(driver(), async (s) => {
        const base = await s.create()
        const child = await s.createReadWrite(base)
        for (const id of [base, child]) {
          const md = await driver().getMetadata(id)
          assert.equal(typeof md, 'object')
          for (const [k, v] of Object.entries(md)) assert.equal(typeof v, 'string', `metadata ${k} of ${id}`)
        }
        const unknown = newLayerId()
        await expectError(driver().getMetadata(unknown), 'NOT_FOUND', unknown)
      })
    })

    tcase('exists', 'exists is true for a created layer and false for an unknown or removed one', async () => {
      await withScratch(driver(), async (s) => {
        assert.equal(await driver().exists(newLayerId()), false)
        const id = await s.create()
        assert.equal(await driver().exists(id), true)
        await s.remove(id)
        assert.equal(await driver().exists(id), false)
      })
    })

    tcase('create-existing', 'creating an id that exists is ALREADY_EXISTS and leaves the layer as it was', async () => {
      await withScratch(driver(), async (s) => {
        const base = await s.create()
        const id = await s.create(base)
        await s.with(id, (dir) => putFile(dir, 'mine', 'mine\n'))
        await expectError(driver().create(id, null), 'ALREADY_EXISTS', id)
        await expectError(driver().createReadWrite(id, base), 'ALREADY_EXISTS', id)
        assert.equal(await s.with(id, (dir) => readFile(join(dir, 'mine'), 'utf8')), 'mine\n')
      })
    })

    tcase('create-missing-parent', 'creating on a parent that does not exist is NOT_FOUND and leaves nothing behind', async () => {
      const missing = newLayerId()
      for (const create of ['create', 'createReadWrite'] as const) {
        const id = newLayerId()
        await expectError(driver()[create](id, missing), 'NOT_FOUND', missing)
        assert.equal(await driver().exists(id), false, `${create} left layer ${id} behind`)
      }
    })
  })
}

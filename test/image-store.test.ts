/**
 * The image store (imagedb) on real files in temp dirs: the exact bytes,
 * modes and names dockerd 20.10 writes (content = config bytes, 0600 in
 * 0700 dirs, parent/lastUpdated metadata), validation of configs,
 * idempotent create, layer handles taken and released around the lock,
 * deletes refused while children exist, short-ID lookup, corrupt content
 * caught by get() and check(), and check --repair.
 *
 * The layer store is not ready; a small fake stands in for the three calls
 * the image store makes (lock, get, has).
 */
import assert from 'node:assert/strict'
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { chainId, sha256Of, type Digest } from '../src/digest/index.js'
import { StrataError } from '../src/errors/index.js'
import { ImageStore, imageChainIds, parseImageConfig, topChainId, type ImageID } from '../src/image/index.js'
import { DataRootLock, RFC3339_NANO_RE, formatRfc3339Nano } from '../src/fs/index.js'
import type { ChainID, LayerHandle } from '../src/layer/types.js'
import { tempDirFor } from './helpers/tmp.js'

// ---------------------------------------------------------------------------

// A fake layer store: a set of chainIDs, live handle counts, and a lock that
// tells whether it is held, so tests can see handles are taken and released
// outside it.

class FakeLayers {
  readonly lock: DataRootLock
  readonly present = new Set<string>()
  readonly live = new Map<string, number>()
  readonly calls: string[] = []
  held = 0

  constructor(root: string) {
    this.lock = new DataRootLock(root)
    const orig = this.lock.withLock.bind(this.lock)
    this.lock.withLock = async <T>(fn: () => Promise<T>): Promise<T> =>
      orig(async () => {
        this.held++
        try {
          return await fn()
        } finally {
          this.held--
        }
      })
  }

  async get(chain: ChainID): Promise<LayerHandle> {
    assert.equal(this.held, 0, 'layers.get must not be called under the data-root lock (the layer store takes it)')
    this.calls.push(`get ${chain}`)
    if (!this.present.has(chain)) throw new StrataError('NOT_FOUND', `layer ${chain} does not exist`)
    this.live.set(chain, (this.live.get(chain) ?? 0) + 1)
    return {
      chainId: chain,
      diffId: chain,
      parent: null,
      cacheId: 'c'.repeat(64),
      size: 0,
      hasTarSplit: true,
      release: async () => {
        assert.equal(this.held, 0, 'release must run after the lock is dropped')
        this.calls.push(`release ${chain}`)
        this.live.set(chain, this.live.get(chain)! - 1)
      },
    }
  }

  async has(chain: ChainID): Promise<boolean> {
    return this.present.has(chain)
  }

  liveCount(): number {
    return [...this.live.values()].reduce((a, b) => a + b, 0)
  }
}

const DIFF_A = sha256Of('layer a') as Digest
const DIFF_B = sha256Of('layer b') as Digest

/** A config in dockerd's own byte layout (key order as Go marshals image.Image). */
function configBytes(diffIds: Digest[], extra = ''): Buffer {
  const history = diffIds.map(() => '{"created":"2024-01-02T03:04:05.123456789Z","created_by":"/bin/sh -c #(nop) ADD file:x in / "}')
  return Buffer.from(
    `{"architecture":"amd64","config":{"Env":["PATH=/usr/bin"],"Cmd":["sh"]${extra}},"created":"2024-01-02T03:04:05.123456789Z","docker_version":"20.10.24","history":[${history.join(',')}],"os":"linux","rootfs":{"type":"layers","diff_ids":[${diffIds.map((d) => `"${d}"`).join(',')}]}}`,
  )
}

async function setup(t: import('node:test').TestContext): Promise<{ root: string; layers: FakeLayers; store: ImageStore; imagedb: string }> {
  const root = tempDirFor(t, 'image-store-')
  const layers = new FakeLayers(root)
  layers.present.add(chainId([DIFF_A]))
  layers.present.add(chainId([DIFF_A, DIFF_B]))
  const store = await ImageStore.open({ root, driverName: 'overlay2', layers })
  return { root, layers, store, imagedb: join(root, 'image', 'overlay2', 'imagedb') }
}

async function modeOf(path: string): Promise<string> {
  return ((await stat(path)).mode & 0o7777).toString(8).padStart(4, '0')
}

async function rejectsWith(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof StrataError, `expected a StrataError, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    assert.match(err.message, message)
    return true
  })
}

// ---------------------------------------------------------------------------

test('config: parse keeps raw bytes, validates rootfs and diff_ids, computes chainIDs', () => {
  const raw = configBytes([DIFF_A, DIFF_B])
  const parsed = parseImageConfig(raw)
  assert.equal(parsed.raw, raw)
  assert.deepEqual(parsed.config.rootfs.diff_ids, [DIFF_A, DIFF_B])
  assert.deepEqual(imageChainIds(parsed.config), [DIFF_A, sha256Of(`${DIFF_A} ${DIFF_B}`)])
  assert.equal(topChainId(parsed.config), sha256Of(`${DIFF_A} ${DIFF_B}`))
  assert.equal(topChainId(parseImageConfig(Buffer.from('{"rootfs":{"type":"layers"}}')).config), null, 'no diff_ids: no layers')
  assert.equal(topChainId(parseImageConfig(Buffer.from('{"rootfs":{"type":"layers","diff_ids":null}}')).config), null)

  const bad: Array<[string, RegExp]> = [
    ['not json', /not JSON/],
    ['[]', /not a JSON object/],
    ['{}', /no "rootfs" field/],
    ['{"rootfs":[]}', /"rootfs" is not an object/],
    ['{"rootfs":{"type":"foo","diff_ids":[]}}', /"rootfs.type" is "foo", expected "layers"/],
    ['{"rootfs":{"type":"layers","diff_ids":{}}}', /"rootfs.diff_ids" is not an array/],
    [`{"rootfs":{"type":"layers","diff_ids":["${DIFF_A}","sha256:abc"]}}`, /"rootfs.diff_ids\[1\]" is "sha256:abc"/],
    [`{"rootfs":{"type":"layers","diff_ids":["${DIFF_A.toUpperCase()}"]}}`, /"rootfs.diff_ids\[0\]"/],
    ['{"rootfs":{"type":"layers"},"history":{}}', /"history" is not an array/],
    ['{"rootfs":{"type":"layers"},"history":[{"empty_layer":"yes"}]}', /"history\[0\].empty_layer" is not a boolean/],
    ['{"rootfs":{"type":"layers"},"os":3}', /"os" is not a string/],
  ]
  for (const [text, re] of bad) {
    assert.throws(() => parseImageConfig(Buffer.from(text)), (err: unknown) => {
      assert.ok(err instanceof StrataError && err.code === 'INVALID_ARGUMENT', `${text}: ${String(err)}`)
      assert.match(err.message, re, text)
      return true
    })
  }
  assert.throws(() => parseImageConfig(Buffer.from('{}'), { origin: '/x/content/sha256/ab' }), (err: unknown) => {
    assert.ok(err instanceof StrataError && err.code === 'CORRUPT')
    assert.match(err.message, /"\/x\/content\/sha256\/ab" is invalid: no "rootfs" field/)
    return true
  })
})

test('rfc3339: Go time.RFC3339Nano format (trimmed nanoseconds, Z or ±hh:mm)', () => {
  const ns = 1795459291006541983n // 2026-11-23T18:41:31.006541983Z
  assert.equal(formatRfc3339Nano(ns, 0), '2026-11-23T18:41:31.006541983Z')
  assert.equal(formatRfc3339Nano(1795459291000000000n, 0), '2026-11-23T18:41:31Z', 'no fraction when it is zero')
  assert.equal(formatRfc3339Nano(1795459291120000000n, 0), '2026-11-23T18:41:31.12Z', 'trailing zeros trimmed')
  assert.equal(formatRfc3339Nano(ns, 60), '2026-11-23T19:41:31.006541983+01:00')
  assert.equal(formatRfc3339Nano(ns, -330), '2026-11-23T13:11:31.006541983-05:30')
  assert.equal(formatRfc3339Nano(1795459291000000001n, 0), '2026-11-23T18:41:31.000000001Z')
})

test('create writes the config bytes as dockerd does, takes and releases the top layer handle; create again is idempotent', async (t) => {
  const { layers, store, imagedb } = await setup(t)
  const raw = configBytes([DIFF_A, DIFF_B])
  const id = sha256Of(raw)
  const r = await store.create(raw)
  assert.deepEqual(r, { id, created: true })

  const contentPath = join(imagedb, 'content', 'sha256', id.slice(7))
  assert.equal(store.contentPath(id), contentPath)
  assert.deepEqual(await readFile(contentPath), raw, 'content file holds the exact bytes')
  assert.equal(await modeOf(contentPath), '0600')
  for (const d of ['..', '.', 'content', 'content/sha256', 'metadata', 'metadata/sha256']) {
    assert.equal(await modeOf(join(imagedb, d)), '0700', `imagedb/${d} is 0700`)
  }
  assert.deepEqual(await readdir(join(imagedb, 'content', 'sha256')), [id.slice(7)], 'no temp file left')
  assert.deepEqual(await readdir(join(imagedb, 'metadata', 'sha256')), [], 'create writes no metadata')
  const top = chainId([DIFF_A, DIFF_B])
  assert.deepEqual(layers.calls, [`get ${top}`, `release ${top}`], 'handle on the top chainID, released')
  assert.equal(layers.liveCount(), 0)

  const before = await stat(contentPath)
  assert.deepEqual(await store.create(raw), { id, created: false }, 'creating it again: created false')
  const after = await stat(contentPath)
  assert.equal(after.ino, before.ino, 'the content file is not rewritten')
  assert.deepEqual(await store.list(), [id])
  assert.equal(layers.liveCount(), 0)

  const img = await store.get(id)
  assert.equal(img.id, id)
  assert.deepEqual(img.raw, raw)
  assert.deepEqual(img.config.rootfs.diff_ids, [DIFF_A, DIFF_B])
  assert.equal(img.config.config?.Cmd?.[0], 'sh')
  assert.equal(img.parent, undefined)
  assert.equal(img.lastUpdated, undefined)
  assert.equal((await store.get(id.slice(7))).id, id, 'the bare hex ID works too')
  assert.deepEqual(await store.topChainIds(), new Set([top]))
})

test('create refuses a config whose layer is missing, an invalid config, an unknown parent; a layerless image needs no layer', async (t) => {
  const { layers, store, imagedb } = await setup(t)
  const missing = configBytes([DIFF_B])
  await rejectsWith(store.create(missing), 'NOT_FOUND', new RegExp(`image config references layer ${DIFF_B} which is not in the layer store`))
  await rejectsWith(store.create('{"rootfs":{"type":"layers","diff_ids":["nope"]}}'), 'INVALID_ARGUMENT', /"rootfs.diff_ids\[0\]"/)
  await rejectsWith(store.create(''), 'INVALID_ARGUMENT', /empty/)
  const tooMuchHistory = `{"history":[{"created_by":"a"},{"created_by":"b"}],"os":"linux","rootfs":{"type":"layers","diff_ids":["${DIFF_A}"]}}`
  await rejectsWith(store.create(tooMuchHistory), 'INVALID_ARGUMENT', /too many non-empty layers in History section/)
  await rejectsWith(store.create(`{"os":"windows","rootfs":{"type":"layers","diff_ids":["${DIFF_A}"]}}`), 'NOT_SUPPORTED', /operating system "windows"/)
  await rejectsWith(store.create(configBytes([DIFF_A]), { parent: sha256Of('nothing') }), 'NOT_FOUND', /Parent image sha256:[0-9a-f]{64} of sha256:[0-9a-f]{64} does not exist/)
  assert.deepEqual(await readdir(join(imagedb, 'content', 'sha256')), [], 'nothing written by the failures')
  assert.equal(layers.liveCount(), 0, 'handles of failed creates are released')

  layers.calls.length = 0
  const empty = Buffer.from('{"history":[{"created_by":"x","empty_layer":true}],"rootfs":{"type":"layers","diff_ids":[]}}')
  assert.equal((await store.create(empty)).created, true)
  assert.deepEqual(layers.calls, [], 'an image with no layers takes no handle')
  assert.deepEqual(await store.topChainIds(), new Set())
})

test('parent and lastUpdated metadata: exact files, children, getters; delete refused while children exist', async (t) => {
  const { layers, store, imagedb } = await setup(t)
  const base = (await store.create(configBytes([DIFF_A]))).id
  const child = (await store.create(configBytes([DIFF_A, DIFF_B]), { parent: base })).id
  const meta = join(imagedb, 'metadata', 'sha256', child.slice(7))
  assert.equal(await readFile(join(meta, 'parent'), 'utf8'), base, 'parent holds "sha256:<hex>", no newline')
  assert.equal(await modeOf(meta), '0700')
  assert.equal(await modeOf(join(meta, 'parent')), '0600')
  assert.deepEqual(await readdir(meta), ['parent'])
  assert.equal(await store.getParent(child), base)
  assert.equal(await store.getParent(base), undefined)
  assert.deepEqual(await store.children(base), [child])
  assert.deepEqual(await store.children(child), [])
  assert.equal((await store.get(child)).parent, base)

  const text = await store.setLastUpdated(base, 1795459291006541983n)
  assert.equal(text, formatRfc3339Nano(1795459291006541983n))
  assert.equal(await readFile(join(imagedb, 'metadata', 'sha256', base.slice(7), 'lastUpdated'), 'utf8'), text)
  assert.equal(await modeOf(join(imagedb, 'metadata', 'sha256', base.slice(7), 'lastUpdated')), '0600')
  const now = await store.setLastUpdated(child)
  assert.match(now, RFC3339_NANO_RE)
  const ms = Date.parse(now)
  assert.ok(Math.abs(ms - Date.now()) < 5_000, `lastUpdated ${now} is now`)
  assert.equal((await store.get(child)).lastUpdated, now)
  assert.equal(await store.getLastUpdated(child), now)

  await rejectsWith(store.setParent(base, child), 'INVALID_ARGUMENT', /cycle/)
  await rejectsWith(store.setParent(child, sha256Of('nope')), 'NOT_FOUND', /unknown parent image ID/)
  await rejectsWith(store.setLastUpdated(sha256Of('nope')), 'NOT_FOUND', /No such image/)

  layers.calls.length = 0
  await rejectsWith(store.delete(base), 'IN_USE', /image has dependent child images/)
  assert.ok(await store.exists(base), 'the parent is still there')
  assert.equal(layers.liveCount(), 0, 'the handle taken for the refused delete is released')
  assert.deepEqual(layers.calls, [`get ${DIFF_A}`, `release ${DIFF_A}`])

  layers.calls.length = 0
  const top = chainId([DIFF_A, DIFF_B])
  assert.deepEqual(await store.delete(child), { id: child, topLayer: top })
  assert.deepEqual(layers.calls, [`get ${top}`, `release ${top}`], 'delete takes a handle first and releases it after the lock')
  assert.deepEqual(await readdir(join(imagedb, 'metadata', 'sha256')), [base.slice(7)], 'the child\'s metadata dir is gone')
  assert.deepEqual(await store.children(base), [])
  assert.deepEqual(await store.delete(base), { id: base, topLayer: DIFF_A })
  assert.deepEqual(await readdir(join(imagedb, 'content', 'sha256')), [])
  assert.deepEqual(await readdir(join(imagedb, 'metadata', 'sha256')), [])
  await rejectsWith(store.delete(base), 'NOT_FOUND', /No such image/)
  await rejectsWith(store.get(base), 'NOT_FOUND', /No such image/)
  assert.equal(layers.liveCount(), 0)
})

test('resolvePrefix: unique prefix, exact ID, ambiguous, none', async (t) => {
  const { store } = await setup(t)
  const ids: ImageID[] = []
  // 17 images: two of them share a first hex digit (pigeonhole).
  for (let i = 0; i < 17; i++) ids.push((await store.create(`{"comment":"${i}","rootfs":{"type":"layers","diff_ids":[]}}`)).id)
  assert.deepEqual(await store.list(), [...ids].sort())
  const byFirst = new Map<string, ImageID[]>()
  for (const id of ids) byFirst.set(id[7]!, [...(byFirst.get(id[7]!) ?? []), id])
  const [shared, group] = [...byFirst].find(([, g]) => g.length > 1)!
  await rejectsWith(store.resolvePrefix(shared), 'INVALID_ARGUMENT', /ambiguous/)
  for (const id of ids) {
    // The shortest prefix no other ID starts with.
    let n = 1
    while (ids.some((o) => o !== id && o.slice(7, 7 + n) === id.slice(7, 7 + n))) n++
    assert.equal(await store.resolvePrefix(id.slice(7, 7 + n)), id)
    assert.equal(await store.resolvePrefix(`sha256:${id.slice(7, 7 + n)}`), id)
    assert.equal(await store.resolvePrefix(id.slice(7)), id)
  }
  assert.ok(group.length > 1)
  const absent = [...'0123456789abcdef'].find((c) => !byFirst.has(c))
  if (absent !== undefined) await rejectsWith(store.resolvePrefix(absent), 'NOT_FOUND', /No such image/)
  await rejectsWith(store.resolvePrefix('zzz'), 'NOT_FOUND', /No such image/)
  await rejectsWith(store.resolvePrefix(''), 'INVALID_ARGUMENT', /Empty/)
})

test('corrupt content: get fails naming the file, topChainIds still keeps its layer, check reports and --repair removes it', async (t) => {
  const { store, imagedb } = await setup(t)
  const good = (await store.create(configBytes([DIFF_A]))).id
  const badRaw = configBytes([DIFF_A, DIFF_B])
  const bad = (await store.create(badRaw, { parent: good })).id
  const path = join(imagedb, 'content', 'sha256', bad.slice(7))
  // One byte changed, still valid JSON naming the same layers.
  await writeFile(path, Buffer.from(badRaw.toString().replace('"Cmd":["sh"]', '"Cmd":["sx"]')))
  await rejectsWith(store.get(bad), 'CORRUPT', new RegExp(`Image content file "${path}" hashes to sha256:[0-9a-f]{64}, not to its ID ${bad}`))
  assert.deepEqual(await store.topChainIds(), new Set([DIFF_A, chainId([DIFF_A, DIFF_B])]), 'a damaged image still keeps its layers')

  const problems = await store.check()
  assert.equal(problems.length, 1, JSON.stringify(problems))
  assert.equal(problems[0]!.kind, 'image-config')
  assert.equal(problems[0]!.subject, bad)
  assert.equal(problems[0]!.repaired, undefined)
  assert.ok(await store.exists(bad), 'check without repair changes nothing')

  const repaired = await store.check({ repair: true })
  assert.equal(repaired.length, 1)
  assert.equal(repaired[0]!.repaired, 'removed the image')
  assert.deepEqual(await store.list(), [good])
  assert.deepEqual(await readdir(join(imagedb, 'metadata', 'sha256')), [], 'its metadata went with it')
  assert.deepEqual(await store.check(), [])

  // Content that hashes right but is not a config (written behind the store's back).
  const junk = Buffer.from('{"not":"a config"}')
  await writeFile(join(imagedb, 'content', 'sha256', sha256Of(junk).slice(7)), junk)
  await rejectsWith(store.get(sha256Of(junk)), 'CORRUPT', /is invalid: no "rootfs" field/)
  const p2 = await store.check({ repair: true })
  assert.deepEqual(p2.map((p) => [p.kind, p.subject, p.repaired]), [['image-config', sha256Of(junk), 'removed the image']])
})

test('check: missing layer, dangling parent, orphan metadata, temp files; repair fixes each', async (t) => {
  const { layers, store, imagedb } = await setup(t)
  const base = (await store.create(configBytes([DIFF_A]))).id
  const child = (await store.create(configBytes([DIFF_A, DIFF_B]), { parent: base })).id
  const lonely = (await store.create(configBytes([DIFF_A], ',"User":"x"'))).id
  assert.deepEqual(await store.check(), [])

  // The child's layer vanished; the lonely image names a parent that does not exist;
  // metadata for an image that does not exist; temp files from interrupted writes.
  layers.present.delete(chainId([DIFF_A, DIFF_B]))
  const ghost = sha256Of('ghost')
  await mkdir(join(imagedb, 'metadata', 'sha256', lonely.slice(7)), { recursive: true })
  await writeFile(join(imagedb, 'metadata', 'sha256', lonely.slice(7), 'parent'), ghost)
  await mkdir(join(imagedb, 'metadata', 'sha256', ghost.slice(7)))
  await writeFile(join(imagedb, 'metadata', 'sha256', ghost.slice(7), 'lastUpdated'), 'x')
  await writeFile(join(imagedb, 'content', 'sha256', `.tmp-${base.slice(7)}12345`), 'half')

  const found = await store.check()
  const summary = found.map((p) => `${p.kind} ${p.subject === child || p.subject === lonely ? (p.subject === child ? 'child' : 'lonely') : p.subject}`).sort()
  assert.deepEqual(summary, [`image-config ${join(imagedb, 'metadata', 'sha256', ghost.slice(7))}`, 'image-config lonely', 'image-missing-layer child'].sort())
  assert.ok(await store.exists(child))

  const fixed = await store.check({ repair: true })
  assert.ok(fixed.every((p) => p.repaired !== undefined), JSON.stringify(fixed))
  assert.ok(fixed.some((p) => p.message.includes('Leftover temp file')))
  assert.deepEqual(await store.list(), [base, lonely].sort(), 'the child without its layer is removed')
  assert.equal(await store.getParent(lonely), undefined, 'the dangling parent link is removed')
  assert.deepEqual((await readdir(join(imagedb, 'content', 'sha256'))).sort(), [base.slice(7), lonely.slice(7)].sort())
  // The child's metadata and the orphan are gone; lonely's dir stays, empty, as dockerd leaves it after DeleteMetadata.
  assert.deepEqual(await readdir(join(imagedb, 'metadata', 'sha256')), [lonely.slice(7)])
  assert.deepEqual(await readdir(join(imagedb, 'metadata', 'sha256', lonely.slice(7))), [])
  assert.deepEqual(await store.check(), [], 'clean after repair')
  assert.equal(layers.liveCount(), 0)
})

test('open validates the driver name and puts the store under image/<driver>', async (t) => {
  const root = tempDirFor(t, 'image-store-open-')
  const layers = new FakeLayers(root)
  await rejectsWith(ImageStore.open({ root, driverName: '', layers }), 'INVALID_ARGUMENT', /driver name/)
  await rejectsWith(ImageStore.open({ root, driverName: 'a/b', layers }), 'INVALID_ARGUMENT', /driver name/)
  const store = await ImageStore.open({ root, driverName: 'vfs', layers })
  assert.equal(store.dir, join(root, 'image', 'vfs', 'imagedb'))
  assert.equal(await modeOf(join(root, 'image', 'vfs')), '0700')
  await rejectsWith(store.get('nonsense'), 'INVALID_ARGUMENT', /Invalid image ID/)
})

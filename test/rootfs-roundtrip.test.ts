/**
 * The layer round trip on real root filesystems rather than a fixture:
 * a static busybox rootfs, and a debootstrap'ed Debian bookworm (minbase),
 * each tarred by GNU tar (posix, with xattrs):
 *
 *   - applyLayer gives the tree GNU tar extracts from the same archive
 *     (types, modes, owners, nanosecond mtimes, xattrs, hardlinks, content);
 *   - tar-split + the applied files reassemble the archive byte for byte,
 *     and its sha256 is the diffID applyLayer reported.
 *
 * debootstrap takes a minute and the network, so its result is cached as a
 * tar in CACHE_DIR and reused by later runs. Delete the file to rebuild it.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream, existsSync, mkdirSync, statSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { test, type TestContext } from 'node:test'
import { applyLayer, type ApplyResult } from '../src/archive/apply.js'
import { assembleTar, createTarSplitFile, directoryFileGetter, readTarSplit } from '../src/archive/tarsplit/index.js'
import type { Digest } from '../src/digest/index.js'
import { aptMirror, DEBOOTSTRAP_TAR, debootstrapTar } from './helpers/debootstrap.js'
import { makeBusyboxRootfs } from './helpers/fixtures.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { tempDirFor } from './helpers/tmp.js'
import { assertSameTree, snapshotTree } from './helpers/tree.js'


/** GNU tar's create and extract options for a layer: PAX format, every xattr, numeric ids. */
const TAR_CREATE = ['--format=posix', '--xattrs', '--xattrs-include=*', '--numeric-owner']
const TAR_EXTRACT = ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-p']

async function sha256File(path: string): Promise<Digest> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer)
  return `sha256:${hash.digest('hex')}` as Digest
}

function ms(start: number): string {
  return `${(performance.now() - start).toFixed(0)} ms`
}

interface Applied {
  result: ApplyResult
  tarSplit: string
  millis: number
}

async function applyWithTarSplit(archive: string, dir: string, tarSplit: string): Promise<Applied> {
  mkdirSync(dir)
  const file = createTarSplitFile(tarSplit)
  try {
    const start = performance.now()
    const result = await applyLayer(dir, createReadStream(archive, { highWaterMark: 1 << 20 }), { whiteouts: 'full', tarSplit: file.sink })
    await file.close()
    return { result, tarSplit, millis: performance.now() - start }
  } catch (err) {
    file.abort()
    throw err
  }
}

/**
 * Applies `archive`, extracts it with GNU tar too, and checks: the same
 * tree both ways (and the source tree's, when given), the diffID, and a
 * byte-identical reassembly that GNU tar can list.
 */
async function roundTrip(t: TestContext, archive: string, scratch: string, label: string, source?: string): Promise<void> {
  // Hashing first also pulls the archive into the page cache, so the timings below compare extraction, not disk reads.
  const diffId = await sha256File(archive)
  const size = statSync(archive).size

  // Each timed extraction starts with no dirty pages left by the previous step (writeback stalls would land on whoever comes next).
  await run('sync', [])
  const strataDir = join(scratch, 'strata')
  const applied = await applyWithTarSplit(archive, strataDir, join(scratch, 'tar-split.json.gz'))
  const { result } = applied
  assert.equal(result.diffId, diffId, 'diffID is the sha256 of the tar')
  assert.equal(result.digest, diffId)
  assert.equal(result.tarSize, size)

  const gnuDir = join(scratch, 'gnutar')
  mkdirSync(gnuDir)
  await run('sync', [])
  let start = performance.now()
  await run('tar', [...TAR_EXTRACT, '-xf', archive, '-C', gnuDir])
  const gnuMillis = performance.now() - start

  // The same archive again, without tar-split, for a like-for-like timing with tar -x.
  const bareDir = join(scratch, 'strata-bare')
  mkdirSync(bareDir)
  await run('sync', [])
  start = performance.now()
  await applyLayer(bareDir, createReadStream(archive, { highWaterMark: 1 << 20 }), { whiteouts: 'full' })
  const bareMillis = performance.now() - start
  await rm(bareDir, { recursive: true })

  const mib = (size / (1 << 20)).toFixed(1)
  const lines = [
    `${label}: ${result.entries} entries, ${mib} MiB tar, content size ${result.size}`,
    `${label}: strata applyLayer + tar-split ${applied.millis.toFixed(0)} ms, applyLayer alone ${bareMillis.toFixed(0)} ms, GNU tar -x ${gnuMillis.toFixed(0)} ms`,
  ]
  for (const l of lines) t.diagnostic(l)

  start = performance.now()
  const strataTree = await snapshotTree(strataDir)
  assertSameTree(strataTree, await snapshotTree(gnuDir), `${label}: strata's apply vs GNU tar's extraction`)
  if (source !== undefined) assertSameTree(strataTree, await snapshotTree(source), `${label}: strata's apply vs the source tree`)
  assert.equal(result.entries, strataTree.size, 'one entry per path')
  t.diagnostic(`${label}: tree comparison ${ms(start)}`)

  start = performance.now()
  const out = join(scratch, 'reassembled.tar')
  await pipeline(
    Readable.from(assembleTar(readTarSplit(applied.tarSplit), directoryFileGetter(strataDir), { expectedDigest: diffId, what: label })),
    createWriteStream(out),
  )
  assert.equal(statSync(out).size, size, 'reassembled size')
  assert.equal(await sha256File(out), diffId, 'reassembled tar is byte-identical (same sha256)')
  await run('cmp', [out, archive])
  const listing = await run('tar', ['-tvf', out])
  assert.equal(listing.stdout.toString().split('\n').filter((l) => l !== '').length, result.entries)
  t.diagnostic(`${label}: reassembly and checks ${ms(start)}`)
}

test('busybox rootfs: apply equals the source and GNU tar -x, reassembles byte for byte', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'busybox', 'tar', 'cmp')) return
  const scratch = tempDirFor(t, 'rootfs-busybox-')
  const source = join(scratch, 'source')
  await makeBusyboxRootfs(source)
  const archive = join(scratch, 'busybox.tar')
  await run('tar', [...TAR_CREATE, '-cf', archive, '-C', source, '.'])
  await roundTrip(t, archive, scratch, 'busybox', source)
})

// ---- debootstrap ----

/** The cached debootstrap tar; built when missing (needs the debootstrap tool). */
async function debootstrapTarFor(t: TestContext): Promise<string | undefined> {
  if (!existsSync(DEBOOTSTRAP_TAR) && !requireTool(t, 'debootstrap')) return undefined
  return debootstrapTar((msg) => t.diagnostic(msg))
}

test('debootstrap bookworm minbase: apply equals GNU tar -x, reassembles byte for byte', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar', 'cmp')) return
  const archive = await debootstrapTarFor(t)
  if (archive === undefined) return
  const scratch = tempDirFor(t, 'rootfs-debootstrap-')
  await roundTrip(t, archive, scratch, 'debootstrap')
})

test('aptMirror reads deb822 and one-line sources', () => {
  const deb822 = [
    'Types: deb',
    '# http://snapshot.debian.org/archive/debian/20250520T000000Z',
    'URIs: http://deb.example.org/debian',
    'Suites: bookworm bookworm-updates',
    'Components: main',
    '',
    'Types: deb',
    'URIs: http://security.example.org/debian-security',
    'Suites: bookworm-security',
  ].join('\n')
  assert.equal(aptMirror('bookworm', [{ name: 'debian.sources', text: deb822 }]), 'http://deb.example.org/debian')
  assert.equal(aptMirror('bookworm', [{ name: 'x.sources', text: 'Enabled: no\nTypes: deb\nURIs: http://off\nSuites: bookworm\n' }]), undefined)
  assert.equal(aptMirror('bookworm', [{ name: 'sources.list', text: '# deb http://old bookworm main\ndeb [arch=amd64] http://m.example/debian bookworm main\n' }]), 'http://m.example/debian')
  assert.equal(aptMirror('bookworm', [{ name: 'x.list.disabled', text: 'deb http://no bookworm main\n' }]), undefined)
})

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
import { createReadStream, createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { rename, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { test, type TestContext } from 'node:test'
import { applyLayer, type ApplyResult } from '../src/archive/apply.js'
import { assembleTar, createTarSplitFile, directoryFileGetter, readTarSplit } from '../src/archive/tarsplit/index.js'
import type { Digest } from '../src/digest/index.js'
import { makeBusyboxRootfs } from './helpers/fixtures.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { tempDirFor } from './helpers/tmp.js'
import { assertSameTree, snapshotTree } from './helpers/tree.js'

const CACHE_DIR = '/var/cache/strata-test'
const DEBOOTSTRAP_TAR = join(CACHE_DIR, 'debootstrap-bookworm.tar')
const SUITE = 'bookworm'
const FALLBACK_MIRROR = 'http://deb.debian.org/debian'

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

/** The URI apt itself uses for `suite` (deb822 .sources or one-line .list), so debootstrap reaches the same archive. */
function aptMirror(suite: string, files: Array<{ name: string; text: string }>): string | undefined {
  for (const { name, text } of files) {
    if (name.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const fields = new Map<string, string>()
        let last = ''
        for (const line of stanza.split('\n')) {
          if (line.startsWith('#') || line.trim() === '') continue
          if (/^\s/.test(line) && last !== '') {
            fields.set(last, `${fields.get(last)} ${line.trim()}`)
            continue
          }
          const m = /^([\w-]+):\s*(.*)$/.exec(line)
          if (m === null) continue
          last = m[1]!.toLowerCase()
          fields.set(last, m[2]!.trim())
        }
        if (fields.get('enabled')?.toLowerCase() === 'no') continue
        const types = (fields.get('types') ?? '').split(/\s+/)
        const suites = (fields.get('suites') ?? '').split(/\s+/)
        const uri = (fields.get('uris') ?? '').split(/\s+/)[0]
        if (types.includes('deb') && suites.includes(suite) && uri !== undefined && uri !== '') return uri
      }
    } else if (name.endsWith('.list')) {
      for (const raw of text.split('\n')) {
        const line = raw.replace(/#.*/, '').replace(/\[[^\]]*\]/, '').trim()
        const [type, uri, lineSuite] = line.split(/\s+/)
        if (type === 'deb' && lineSuite === suite && uri !== undefined) return uri
      }
    }
  }
  return undefined
}

function hostAptSources(): Array<{ name: string; text: string }> {
  const files: Array<{ name: string; text: string }> = []
  if (existsSync('/etc/apt/sources.list')) files.push({ name: 'sources.list', text: readFileSync('/etc/apt/sources.list', 'utf8') })
  const dir = '/etc/apt/sources.list.d'
  if (existsSync(dir)) {
    for (const name of readdirSync(dir).sort()) files.push({ name, text: readFileSync(join(dir, name), 'utf8') })
  }
  return files
}

/** Mount points at or below `dir`, deepest first (debootstrap mounts proc, sys, dev/pts in its target). */
function mountsUnder(dir: string): string[] {
  const decode = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => decode(l.split(' ')[1] ?? ''))
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length)
}

/** Removes a debootstrap target, but only once nothing is mounted inside it (rm -r would descend into /dev, /sys...). */
async function removeTarget(dir: string): Promise<void> {
  for (const m of mountsUnder(dir)) await run('umount', ['-l', m]).catch(() => {})
  const left = mountsUnder(dir)
  if (left.length > 0) throw new Error(`Not removing ${dir}: still mounted: ${left.join(', ')}`)
  await rm(dir, { recursive: true, force: true })
}

/** The cached debootstrap tar, built (about a minute, needs the Debian mirror) when missing. */
async function debootstrapTar(t: TestContext): Promise<string | undefined> {
  if (existsSync(DEBOOTSTRAP_TAR)) {
    t.diagnostic(`using cached ${DEBOOTSTRAP_TAR}`)
    return DEBOOTSTRAP_TAR
  }
  if (!requireTool(t, 'debootstrap')) return undefined
  mkdirSync(CACHE_DIR, { recursive: true, mode: 0o755 })
  const mirror = aptMirror(SUITE, hostAptSources()) ?? FALLBACK_MIRROR
  const target = mkdtempSync(join(tmpdir(), 'strata-test-debootstrap-'))
  const partial = `${DEBOOTSTRAP_TAR}.tmp-${process.pid}`
  try {
    const start = performance.now()
    t.diagnostic(`debootstrap --variant=minbase ${SUITE} ${target} ${mirror}`)
    await run('debootstrap', ['--variant=minbase', SUITE, target, mirror])
    t.diagnostic(`debootstrap took ${ms(start)}`)
    const left = mountsUnder(target)
    if (left.length > 0) throw new Error(`debootstrap left mounts behind: ${left.join(', ')}`)
    await run('tar', [...TAR_CREATE, '-cf', partial, '-C', target, '.'])
    await rename(partial, DEBOOTSTRAP_TAR)
  } finally {
    rmSync(partial, { force: true })
    // A failure to clean up must not hide why debootstrap or tar failed.
    await removeTarget(target).catch((err: unknown) => t.diagnostic(`cleanup: ${(err as Error).message}`))
  }
  return DEBOOTSTRAP_TAR
}

test('debootstrap bookworm minbase: apply equals GNU tar -x, reassembles byte for byte', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar', 'cmp')) return
  const archive = await debootstrapTar(t)
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

/**
 * Images for the explorer's tests, their layers made by GNU tar from real
 * directories, as `docker build` would commit them: whiteouts are empty
 * files named `.wh.NAME`, an opaque directory holds `.wh..wh..opq`, and
 * hardlinks are what tar finds on disk. Every figure the tests expect is
 * worked out by hand in EXPECTED, from the layer contents below.
 *
 *   layer 0  /.profile (20)  /etc/passwd (100)  /etc/.hidden-config (30)
 *            /home/user/.bashrc (50)  /data/big.bin (65536)  /data/keep.txt (10)
 *            /opt/app/{a,b,c}.txt (100 each)
 *   layer 1  /.env (15, hidden, added)  .wh..profile (removes a hidden file)
 *            /home/user/.bashrc (60, rewritten)  /data/big.bin (65536, rewritten)
 *            data/.wh.keep.txt  opt/app/.wh..wh..opq + /opt/app/new.txt (100)
 *            /hard/a-original (1000) + /hard/b-link (a hardlink to it)
 *   layer 2  .wh.etc (removes /etc and the two files in it)
 */
import { chmod, link, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import type { Store } from '../../src/store/index.js'
import { makeImage, type MadeImage } from './image-fixtures.js'
import { run } from './peers.js'
import { tempDirFor } from './tmp.js'

/** A file to write: content (a string, or a size in bytes of 'x'), mode, or a hardlink to another path of the same layer. */
export type FixtureFile = string | number | { content: string | number; mode?: number } | { hardlinkTo: string }

/** Writes `files` (path → file) under `dir`, directories 0755, files 0644 unless given. */
export async function writeLayerDir(dir: string, files: Record<string, FixtureFile>): Promise<void> {
  await mkdir(dir, { recursive: true })
  await chmod(dir, 0o755)
  for (const [rel, spec] of Object.entries(files)) {
    const path = join(dir, rel)
    const parent = path.slice(0, path.lastIndexOf('/'))
    await mkdir(parent, { recursive: true })
    for (let d = parent; d.length > dir.length; d = d.slice(0, d.lastIndexOf('/'))) await chmod(d, 0o755)
    if (rel.endsWith('/')) continue
    if (typeof spec === 'object' && 'hardlinkTo' in spec) {
      await link(join(dir, spec.hardlinkTo), path)
      continue
    }
    const content = typeof spec === 'object' ? spec.content : spec
    await writeFile(path, typeof content === 'number' ? 'x'.repeat(content) : content)
    await chmod(path, typeof spec === 'object' ? (spec.mode ?? 0o644) : 0o644)
  }
}

/** GNU tar of `dir` as a layer: sorted names, numeric owners, one fixed mtime. */
export async function gnuTarLayer(dir: string): Promise<Buffer> {
  const { stdout } = await run('tar', ['--numeric-owner', '--owner=0', '--group=0', '--sort=name', '--mtime=@1700000000', '--format=gnu', '-C', dir, '-cf', '-', '.'])
  return stdout
}

/** Layer tars (GNU tar) of each `layers` spec, in a scratch dir removed when the test ends. */
export async function gnuTarLayers(t: TestContext, layers: Array<Record<string, FixtureFile>>): Promise<Buffer[]> {
  const scratch = tempDirFor(t, 'explore-layers-')
  const out: Buffer[] = []
  for (const [i, files] of layers.entries()) {
    const dir = join(scratch, `layer${i}`)
    await writeLayerDir(dir, files)
    out.push(await gnuTarLayer(dir))
  }
  return out
}

export const FIXTURE_TAG = 'explore-fixture:latest'

export const FIXTURE_LAYERS: Array<Record<string, FixtureFile>> = [
  {
    '.profile': 20,
    'etc/passwd': 100,
    'etc/.hidden-config': 30,
    'home/user/.bashrc': 50,
    'data/big.bin': 65536,
    'data/keep.txt': 10,
    'opt/app/a.txt': 100,
    'opt/app/b.txt': 100,
    'opt/app/c.txt': 100,
  },
  {
    '.env': 15,
    '.wh..profile': '',
    'home/user/.bashrc': 60,
    'data/big.bin': 65536,
    'data/.wh.keep.txt': '',
    'opt/app/.wh..wh..opq': '',
    'opt/app/new.txt': 100,
    'hard/a-original': 1000,
    'hard/b-link': { hardlinkTo: 'hard/a-original' },
  },
  { '.wh.etc': '' },
]

export const FIXTURE_HISTORY = [
  { created: '2024-01-01T00:00:00Z', created_by: '/bin/sh -c #(nop) ADD file:rootfs in / ' },
  { created: '2024-01-01T00:00:01Z', created_by: '/bin/sh -c #(nop)  ENV A=1', empty_layer: true },
  { created: '2024-01-01T00:00:02Z', created_by: '/bin/sh -c rm /.profile /data/keep.txt && rm -rf /opt/app && ...' },
  { created: '2024-01-01T00:00:03Z', created_by: '/bin/sh -c rm -rf /etc' },
]

/** What the fixture's layers change, worked out by hand (types.ts says how marks count). */
export const EXPECTED = {
  layers: [
    // layer 0: every path is new: 5 directories (/etc /home /home/user /data /opt /opt/app = 6) + 9 files.
    { added: 15, modified: 0, removed: 0, wastedBytes: 0 },
    // added: /.env /opt/app/new.txt /hard /hard/a-original /hard/b-link; modified: .bashrc, big.bin, /opt/app (opaque);
    // removed: /.profile /data/keep.txt /opt/app/{a,b,c}.txt; wasted: 20 + 10 + 300 + 50 + 65536.
    { added: 5, modified: 3, removed: 5, wastedBytes: 65916 },
    // removed: /etc /etc/passwd /etc/.hidden-config; wasted 130.
    { added: 0, modified: 0, removed: 3, wastedBytes: 130 },
  ],
  efficiency: {
    // Σ smallest per path 67261 / Σ cumulative 132887 (see efficiency.ts; worked out path by path in the test).
    score: 67261 / 132887,
    wastedBytes: 131212,
    userSizeBytes: 66711,
    top: [
      { path: '/data/big.bin', count: 2, cumulativeSize: 131072 },
      { path: '/home/user/.bashrc', count: 2, cumulativeSize: 110 },
      { path: '/.profile', count: 2, cumulativeSize: 20 },
      { path: '/data/keep.txt', count: 2, cumulativeSize: 10 },
    ],
  },
} as const

/** The fixture image, registered in `store` and tagged FIXTURE_TAG. */
export async function makeFixtureImage(t: TestContext, store: Store, tag = FIXTURE_TAG): Promise<MadeImage> {
  const layers = await gnuTarLayers(t, FIXTURE_LAYERS)
  return makeImage(store, { layers, created: '2024-01-01T00:00:03Z', history: FIXTURE_HISTORY, tags: [tag] })
}

/** Names a browser and a terminal must show escaped: control characters, markup, bidi overrides, and a 4,000-character path. */
export const ODD_NAMES = {
  newline: 'odd/line\nbreak',
  escape: 'odd/\u001b[31mred\u001b[0m',
  markup: 'odd/<img src=x onerror="window.__pwned=1">',
  bidi: 'odd/evil\u202Etxt.exe',
  // 16 directories of 240 characters (a…a to p…p) and a 100-character file: 4 + 16 × 241 + 100 = 3,960 characters.
  long: `odd/${Array.from({ length: 16 }, (_, i) => `${String.fromCharCode(97 + i)}`.repeat(240)).join('/')}/${'z'.repeat(100)}`,
} as const

/** A one-layer image holding ODD_NAMES, tagged `tag`. */
export async function makeOddImage(t: TestContext, store: Store, tag = 'explore-odd:latest'): Promise<MadeImage> {
  const files: Record<string, FixtureFile> = {}
  for (const name of Object.values(ODD_NAMES)) files[name] = 7
  const layers = await gnuTarLayers(t, [files])
  return makeImage(store, { layers, created: '2024-01-02T00:00:00Z', tags: [tag] })
}

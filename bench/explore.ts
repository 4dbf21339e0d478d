/**
 * The layer explorer on a 100k-file image (200 directories of 500 files,
 * tarred by GNU tar, then a second layer rewriting 10% of them and
 * removing one directory), and a 100k-entry flat directory:
 * - indexing a layer from tar-split vs GNU `tar -tv` listing the same tar
 *   (the floor for reading a layer's headers);
 * - the whole analysis (every layer's counts and dive's efficiency) vs GNU
 *   tar listing both layers;
 * - the page in headless Chromium: picking the image until its root is
 *   drawn, opening a 500-entry directory, and opening the 100k-entry one,
 *   each until the rows are on screen. dive, the tool people use for this,
 *   is a terminal program not packaged for Debian: there is no peer here.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { chromium } from 'playwright-core'
import { Explorer, indexFromTarSplit } from '../src/explore/index.js'
import { startExploreServer } from '../src/explore-server/index.js'
import { LAYER_FILES } from '../src/layer/index.js'
import { Store } from '../src/store/index.js'
import { makeImage } from '../test/helpers/image-fixtures.js'
import { compare, sh, type CaseResult } from './harness.js'

const DIRS = 200
const PER_DIR = 500

async function tarOf(dir: string, out: string): Promise<void> {
  await sh(`tar --numeric-owner --sort=name --format=gnu -C ${dir} -cf ${out} .`)
}

export async function exploreBench(work: string, log: (m: string) => void): Promise<CaseResult[]> {
  log(`explore: writing ${DIRS * PER_DIR} files twice (on a tmpfs), tarring them with GNU tar`)
  const src = join(work, 'src')
  mkdirSync(src)
  await sh(`mount -t tmpfs -o size=2g strata-bench ${src}`)
  const base = join(src, 'base')
  const upper = join(src, 'upper')
  const flat = join(src, 'flat')
  for (let d = 0; d < DIRS; d++) {
    const dir = join(base, 'usr', 'share', `pkg-${String(d).padStart(3, '0')}`)
    mkdirSync(dir, { recursive: true })
    for (let f = 0; f < PER_DIR; f++) writeFileSync(join(dir, `file-${f}.txt`), `${d}/${f}\n`.repeat((f % 7) + 1))
  }
  for (let d = 0; d < DIRS; d += 10) {
    const dir = join(upper, 'usr', 'share', `pkg-${String(d).padStart(3, '0')}`)
    mkdirSync(dir, { recursive: true })
    for (let f = 0; f < PER_DIR; f++) writeFileSync(join(dir, `file-${f}.txt`), `rewritten ${d}/${f}\n`)
  }
  writeFileSync(join(upper, 'usr', 'share', '.wh.pkg-001'), '')
  mkdirSync(join(flat, 'data'), { recursive: true })
  for (let f = 0; f < DIRS * PER_DIR; f++) writeFileSync(join(flat, 'data', `f${f}`), '')
  await tarOf(base, join(work, 'base.tar'))
  await tarOf(upper, join(work, 'upper.tar'))
  await tarOf(flat, join(work, 'flat.tar'))
  await sh(`umount ${src}`)

  log('explore: registering the images')
  const root = join(work, 'root')
  const store = await Store.open({ root, driver: 'overlay2' })
  const results: CaseResult[] = []
  try {
    const { readFile } = await import('node:fs/promises')
    const made = await makeImage(store, { layers: [await readFile(join(work, 'base.tar')), await readFile(join(work, 'upper.tar'))], created: '2024-01-01T00:00:00Z', tags: ['bench-100k:latest'] })
    await makeImage(store, { layers: [await readFile(join(work, 'flat.tar'))], created: '2024-01-02T00:00:00Z', tags: ['bench-flat:latest'] })
    const tarSplit = join(store.layers.paths.layerDir(made.chain[0]!), LAYER_FILES.tarSplit)

    log('explore: index a 100k-file layer')
    results.push(
      await compare('index a 100k-file layer (headers only)', { name: 'strata tar-split index', run: async () => void (await indexFromTarSplit(tarSplit)) }, [
        { name: 'GNU tar -tv of the layer tar', run: () => sh(`tar --numeric-owner -tvf ${join(work, 'base.tar')} > /dev/null`) },
      ]),
    )
    log('explore: analysis of the 2-layer image')
    results.push(
      await compare('counts + dive efficiency, 100k files, 2 layers', { name: 'strata analysis (cold)', run: async () => void (await new Explorer(store).analysis('bench-100k')) }, [
        { name: 'GNU tar -tv of both layer tars', run: () => sh(`tar --numeric-owner -tvf ${join(work, 'base.tar')} > /dev/null && tar --numeric-owner -tvf ${join(work, 'upper.tar')} > /dev/null`) },
      ]),
    )

    log('explore: the page in Chromium')
    results.push(...(await pageCases(store, log)))
  } finally {
    await store.close()
  }
  return results
}

async function pageCases(store: Store, log: (m: string) => void): Promise<CaseResult[]> {
  const server = await startExploreServer({ explorer: new Explorer(store) })
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
  const times = { image: [] as number[], dir: [] as number[], flat: [] as number[] }
  try {
    for (let run = 0; run < 3; run++) {
      // The first run finds the server's caches cold (it indexes the layers); the others time the page.
      const page = await browser.newPage({ viewport: { width: 1440, height: 900 } })
      await page.goto(server.url)
      await page.getByTestId('image-item').first().waitFor()
      let t0 = performance.now()
      await page.getByTestId('image-item').filter({ hasText: 'bench-100k' }).click()
      await page.locator('[data-testid=tree-row][data-path="/usr"]').waitFor()
      times.image.push(performance.now() - t0)
      await page.locator('[data-testid=tree-row][data-path="/usr"]').click()
      await page.locator('[data-testid=tree-row][data-path="/usr/share"]').click()
      await page.locator('[data-testid=tree-row][data-path="/usr/share/pkg-005"]').waitFor()
      t0 = performance.now()
      await page.locator('[data-testid=tree-row][data-path="/usr/share/pkg-005"]').click()
      await page.locator('[data-testid=tree-row][data-path="/usr/share/pkg-005/file-0.txt"]').waitFor()
      times.dir.push(performance.now() - t0)
      await page.getByTestId('image-item').filter({ hasText: 'bench-flat' }).click()
      await page.locator('[data-testid=tree-row][data-path="/data"]').waitFor()
      t0 = performance.now()
      await page.locator('[data-testid=tree-row][data-path="/data"]').click()
      await page.locator('[data-testid=tree-row][data-path="/data/f0"]').waitFor()
      times.flat.push(performance.now() - t0)
      log(`explore: page run ${run + 1}: image ${times.image[run]!.toFixed(0)} ms, 500-entry dir ${times.dir[run]!.toFixed(0)} ms, 100k-entry dir ${times.flat[run]!.toFixed(0)} ms`)
      await page.close()
    }
  } finally {
    await browser.close()
    await server.close()
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  const noPeer = (title: string, name: string, ms: number): CaseResult => ({ title, strata: { name, ms }, peers: [] })
  return [
    noPeer('page: pick the 100k-file image until its root is drawn, cold (the server indexes both layers)', 'Chromium', times.image[0]!),
    noPeer('page: pick the 100k-file image until its root is drawn, warm', 'Chromium', median(times.image.slice(1))),
    noPeer('page: open a 500-entry directory until drawn', 'Chromium', median(times.dir)),
    noPeer('page: open a 100k-entry directory until drawn', 'Chromium', median(times.flat)),
  ]
}

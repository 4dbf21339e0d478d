/**
 * The explorer's page in a real browser: Debian's Chromium, headless, driven
 * by playwright-core, against `startExploreServer` on loopback (no other
 * network). It picks images, opens layers and directories, and checks what
 * a person would read: the counts of the hidden-file / whiteout / opaque /
 * hardlink fixture, names that must render escaped, a broken layer that
 * must not break the rest. Screenshots go to test-artifacts/ (gitignored).
 */
import assert from 'node:assert/strict'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { writeFile } from 'node:fs/promises'
import { test, type TestContext } from 'node:test'
import { chromium, type Browser, type Page } from 'playwright-core'
import { Explorer } from '../src/explore/index.js'
import { startExploreServer } from '../src/explore-server/index.js'
import { LAYER_FILES } from '../src/layer/index.js'
import { openTestStore } from './helpers/archive-fixtures.js'
import { FIXTURE_TAG, ODD_NAMES, gnuTarLayers, makeFixtureImage, makeOddImage } from './helpers/explore-fixtures.js'
import { makeImage } from './helpers/image-fixtures.js'
import { requireRoot, requireTool } from './helpers/peers.js'

const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url))

/**
 * Chromium as it runs here: no sandbox (root), no background traffic (the
 * closed network refuses it); playwright gives it a fresh empty profile.
 */
async function launch(t: TestContext): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
  t.after(() => browser.close())
  return browser
}

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true })
  await page.screenshot({ path: join(ARTIFACTS, name), fullPage: false })
}

/** A CSS string literal of `s`: quotes and backslashes escaped, control characters as hex escapes. */
function cssString(s: string): string {
  return `"${s.replace(/["\\]/g, '\\$&').replace(/[\u0000-\u001f\u007f]/g, (c) => `\\${c.charCodeAt(0).toString(16)} `)}"`
}

const row = (page: Page, path: string) => page.locator(`[data-testid=tree-row][data-path=${cssString(path)}]`)

test('the page: pick an image, open a layer, see the right counts and marks for hidden files, whiteouts, an opaque dir and hardlinks', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar', 'chromium')) return
  const store = await openTestStore(t)
  await makeFixtureImage(t, store)
  await makeOddImage(t, store)
  const server = await startExploreServer({ explorer: new Explorer(store) })
  t.after(() => server.close())
  const browser = await launch(t)
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } })
  const pageErrors: string[] = []
  page.on('pageerror', (e) => pageErrors.push(e.message))
  // Nothing but the explorer's own origin is ever asked for.
  const foreign: string[] = []
  page.on('request', (r) => {
    if (!r.url().startsWith(server.url)) foreign.push(r.url())
  })
  await page.goto(server.url)
  await page.getByTestId('image-item').first().waitFor()
  assert.deepEqual(await page.getByTestId('image-item').locator('.image-tags').allTextContents(), ['explore-odd:latest', FIXTURE_TAG])

  await page.getByTestId('image-item').filter({ hasText: FIXTURE_TAG }).click()
  const layerRows = page.getByTestId('layer-row')
  await layerRows.nth(2).getByTestId('removed').waitFor()
  const counts = async (i: number): Promise<string> => (await layerRows.nth(i).locator('.counts').textContent())!.replace(/\s+/g, ' ').trim()
  assert.equal(await counts(0), '+15 ~0 −0')
  assert.equal(await counts(1), '+5 ~3 −5')
  assert.equal(await counts(2), '+0 ~0 −3')
  assert.equal(await layerRows.nth(1).getByTestId('wasted').textContent(), '65.9 kB')
  assert.equal(await page.getByTestId('efficiency-score').textContent(), '50.6%')
  assert.equal(await page.getByTestId('efficiency-wasted').textContent(), '131 kB')
  assert.deepEqual(await page.getByTestId('inefficiency').locator('.path').allTextContents(), ['/data/big.bin', '/home/user/.bashrc', '/.profile', '/data/keep.txt'])

  // Layer 1: hidden files added and removed at the root, an opaque dir, a hardlink.
  await layerRows.nth(1).click()
  await row(page, '/.env').waitFor()
  assert.equal(await row(page, '/.env').getAttribute('data-mark'), 'added')
  assert.equal(await row(page, '/.profile').getAttribute('data-mark'), 'removed')
  await row(page, '/opt').click()
  await row(page, '/opt/app').click()
  await row(page, '/opt/app/new.txt').waitFor()
  assert.match((await row(page, '/opt/app').textContent())!, /opaque/)
  for (const f of ['a.txt', 'b.txt', 'c.txt']) assert.equal(await row(page, `/opt/app/${f}`).getAttribute('data-mark'), 'removed')
  assert.equal(await row(page, '/opt/app/new.txt').getAttribute('data-mark'), 'added')
  await row(page, '/hard').click()
  await row(page, '/hard/b-link').waitFor()
  assert.equal(await row(page, '/hard/b-link').getAttribute('data-kind'), 'hardlink')
  assert.match((await row(page, '/hard/b-link').textContent())!, /⇒ \/hard\/a-original/)
  await row(page, '/data').click()
  await row(page, '/data/keep.txt').waitFor()
  assert.equal(await row(page, '/data/big.bin').getAttribute('data-mark'), 'modified')
  assert.equal(await row(page, '/data/keep.txt').getAttribute('data-mark'), 'removed')
  await shot(page, 'explore-layer1.png')

  // Layer 2 with only changes: /etc and what it held, removed; the open directories stay open.
  await layerRows.nth(2).click()
  await page.getByTestId('only-changes').check()
  for (let i = 0; i < 100 && (await page.getByTestId('tree-row').count()) !== 1; i++) await page.waitForTimeout(50)
  assert.deepEqual(await page.getByTestId('tree-row').evaluateAll((rows) => rows.map((r) => `${r.getAttribute('data-path')}:${r.getAttribute('data-mark')}`)), ['/etc:removed'])
  await page.getByTestId('only-changes').uncheck()
  await page.getByTestId('name-search').fill('bashrc')
  await page.getByTestId('search-count').filter({ hasText: '1 match' }).waitFor()
  assert.deepEqual(await page.getByTestId('tree-row').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-path'))), ['/home/user/.bashrc'])

  // Compare with the other image: nothing shared, every path differs.
  await page.getByTestId('compare-select').selectOption({ label: 'explore-odd:latest' })
  await page.getByTestId('shared-layers').waitFor()
  assert.equal(await page.getByTestId('shared-layers').textContent(), '0')
  await shot(page, 'explore-compare.png')
  assert.deepEqual(pageErrors, [])
  assert.deepEqual(foreign, [])
})

test('the page: odd names render escaped, markup in a name stays text, a 4,000-character path shows whole', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar', 'chromium')) return
  const store = await openTestStore(t)
  await makeOddImage(t, store)
  const server = await startExploreServer({ explorer: new Explorer(store) })
  t.after(() => server.close())
  const page = await (await launch(t)).newPage({ viewport: { width: 1440, height: 900 } })
  await page.goto(server.url)
  await page.getByTestId('image-item').first().click()
  await row(page, '/odd').click()
  await row(page, `/${ODD_NAMES.markup}`).waitFor()
  const text = async (name: keyof typeof ODD_NAMES): Promise<string> => (await row(page, `/${name === 'long' ? 'odd/' + 'a'.repeat(240) : ODD_NAMES[name]}`).locator('.c-name').textContent())!
  assert.match(await text('newline'), /line\\nbreak/)
  assert.match(await text('escape'), /\\e\[31mred\\e\[0m/)
  assert.match(await text('bidi'), /evil\\u202etxt\.exe/)
  assert.match(await text('markup'), /<img src=x onerror="window\.__pwned=1">/)
  assert.equal(await page.evaluate('window.__pwned'), undefined, 'markup in a name never runs')
  assert.equal(await page.locator('[data-testid=tree] img').count(), 0)

  await page.getByTestId('name-search').fill('z'.repeat(20))
  await page.getByTestId('search-count').filter({ hasText: '1 match' }).waitFor()
  await page.getByTestId('tree-row').first().click()
  const full = (await page.getByTestId('details').locator('.full-path').textContent())!
  assert.equal(full, `/${ODD_NAMES.long}`)
  assert.ok(full.length > 3900)
  await shot(page, 'explore-odd-names.png')
})

test('the page: a layer whose tar-split is corrupt shows its error; the layers above and below still work', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar', 'chromium')) return
  const store = await openTestStore(t)
  const made = await makeImage(store, { layers: await gnuTarLayers(t, [{ 'base.txt': 10 }, { 'middle.txt': 20 }, { 'top.txt': 30 }]), created: '2024-01-03T00:00:00Z', tags: ['broken:latest'] })
  await writeFile(join(store.layers.paths.layerDir(made.chain[1]!), LAYER_FILES.tarSplit), 'not gzip at all')
  const server = await startExploreServer({ explorer: new Explorer(store) })
  t.after(() => server.close())
  const page = await (await launch(t)).newPage({ viewport: { width: 1440, height: 900 } })
  await page.goto(`${server.url}#image=${encodeURIComponent(made.id)}&layer=1`)
  await page.getByTestId('layer-error').first().waitFor()
  assert.match((await page.getByTestId('layer-error').first().textContent())!, /^Layer 1 could not be read: Cannot read the tar-split metadata of layer sha256:[0-9a-f]{64}: it is not gzip data/)
  assert.match((await page.getByTestId('layer-row').nth(1).textContent())!, /unreadable/)
  assert.equal(await page.getByTestId('layer-row').nth(0).getByTestId('added').textContent(), '+1')
  await shot(page, 'explore-broken-layer.png')
  await page.getByTestId('layer-row').nth(2).click()
  await row(page, '/top.txt').waitFor()
  assert.deepEqual(await page.getByTestId('tree-row').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-path'))), ['/base.txt', '/top.txt'])
  assert.match((await page.getByTestId('layer-error').first().textContent())!, /Layer 1 below could not be read; this view leaves it out/)
})

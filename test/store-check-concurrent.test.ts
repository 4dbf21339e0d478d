/**
 * check beside other commands (issue 22): `check` and `check --repair`
 * running in a loop while other processes load and rmi images sharing
 * layers on the same data root. Attacks by name:
 *
 * - plain check never reports corruption that is not there (a layer, image
 *   or tag an rmi removed while check read it);
 * - check --repair never repairs anything that was sound (it would remove
 *   layers mid-operation), and never leaves orphan layers behind;
 * - afterwards a final check is clean, and every image the loaders kept
 *   saves (every layer exported and verified against its diffID).
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { Store } from '../src/store/index.js'
import { randomBytesSeeded } from './helpers/fixtures.js'
import { layerTar, makeImage } from './helpers/image-fixtures.js'
import { requireRoot } from './helpers/peers.js'
import { strata } from './helpers/strata-cli.js'
import { tempDirFor } from './helpers/tmp.js'

const DRIVER = 'overlay2'

interface Problem {
  kind: string
  subject: string
  message: string
  repaired?: string
  severity?: string
}

function parseProblems(text: string): Problem[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Problem)
}

test('check and check --repair in a loop beside load and rmi: no false corruption, no lost or orphan layers', { timeout: 600_000 }, async (t) => {
  if (!requireRoot(t)) return
  const work = tempDirFor(t, 'check-concurrent-')
  // Three images on one shared base layer, each saved to its own archive.
  const src = join(work, 'src')
  const base = layerTar({ base: randomBytesSeeded(2 << 20, 7) })
  const names = ['keep:1', 'churn-a:1', 'churn-b:1']
  const store = await Store.open({ root: src, driver: DRIVER })
  try {
    for (const [i, tag] of names.entries()) {
      await makeImage(store, {
        layers: [base, layerTar({ [`own${i}`]: randomBytesSeeded(1 << 20, 100 + i) }), layerTar({ [`top${i}`]: randomBytesSeeded(64 << 10, 200 + i) })],
        created: `2024-01-0${i + 1}T00:00:00Z`,
        tags: [tag],
      })
    }
  } finally {
    await store.close()
  }
  const archives: string[] = []
  for (const [i, tag] of names.entries()) {
    const out = join(work, `img${i}.tar`)
    const r = await strata(['save', '-o', out, tag], { root: src, driver: DRIVER })
    assert.equal(r.code, 0, r.stderr)
    archives.push(out)
  }

  const root = join(work, 'root')
  const first = await strata(['load', '-q', '-i', archives[0]!], { root, driver: DRIVER })
  assert.equal(first.code, 0, first.stderr)

  const ROUNDS = 8
  let loadersDone = 0
  const loader = async (archive: string, tag: string): Promise<void> => {
    try {
      for (let i = 0; i < ROUNDS; i++) {
        const l = await strata(['load', '-q', '-i', archive], { root, driver: DRIVER })
        assert.equal(l.code, 0, `load ${tag}: ${l.stderr}`)
        const r = await strata(['rmi', tag], { root, driver: DRIVER })
        assert.equal(r.code, 0, `rmi ${tag}: ${r.stderr}`)
      }
    } finally {
      loadersDone++
    }
  }
  const checks = { plain: 0, repair: 0 }
  const checker = async (repair: boolean): Promise<void> => {
    // At least three runs each, and on until the loaders are done.
    for (let n = 0; n < 3 || loadersDone < 2; n++) {
      const r = await strata(['check', '--format', 'json', ...(repair ? ['--repair'] : [])], { root, driver: DRIVER })
      const found = parseProblems(r.text)
      // Debris is what the kill of nobody left here: none expected either.
      const wrong = found.filter((p) => p.kind !== 'layer-orphan')
      assert.deepEqual(wrong, [], `check${repair ? ' --repair' : ''} run ${n} reported corruption that is not there: ${r.stderr}`)
      // Loads hold their layers until the image exists and rmi collects what it frees: no orphan either.
      assert.deepEqual(found, [], `check${repair ? ' --repair' : ''} run ${n} found orphan layers`)
      assert.equal(r.code, 0, r.stderr)
      checks[repair ? 'repair' : 'plain']++
    }
  }
  await Promise.all([loader(archives[1]!, names[1]!), loader(archives[2]!, names[2]!), checker(false), checker(true)])
  t.diagnostic(`${checks.plain} plain and ${checks.repair} repairing checks beside ${2 * ROUNDS} loads and ${2 * ROUNDS} rmis`)

  // Afterwards: clean, the kept image whole, and the churned ones load again.
  const final = await strata(['check', '--format', 'json'], { root, driver: DRIVER })
  assert.deepEqual(parseProblems(final.text), [])
  for (const a of archives.slice(1)) assert.equal((await strata(['load', '-q', '-i', a], { root, driver: DRIVER })).code, 0)
  const saved = await strata(['save', '-o', join(work, 'all.tar'), ...names], { root, driver: DRIVER })
  assert.equal(saved.code, 0, saved.stderr)
  const ls = await strata(['layer', 'ls', '--format', 'json'], { root, driver: DRIVER })
  assert.equal(ls.text.trim().split('\n').length, 1 + 2 * 3, 'the shared base once and two layers per image')
})

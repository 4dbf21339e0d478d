/**
 * Debris (issue 22): every temp thing strata makes under the data root is
 * owned by a live process or swept on the next open, and `check` reports
 * what it found. Attacks by name:
 *
 * - kill -9 a load of a gzip-compressed archive mid-way, several times
 *   (while it spools, while it registers layers): the next open leaves no
 *   spool and no transaction, check reports each removed thing, the
 *   following check finds nothing, and the archive then loads;
 * - a probe dir (overlay2's check-overlayfs-support*) and a spool dir of a
 *   killed process are swept; the same dirs of a live process are kept;
 * - the read-only verbs (images, inspect, history, ps, version) run while
 *   another process holds the data-root lock (they used to wait for it:
 *   this test then ends on its timeout) and leave a dead transaction to
 *   the next writing open, whose check reports it.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { randomBytesSeeded } from './helpers/fixtures.js'
import { layerTar, makeImage } from './helpers/image-fixtures.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { STRATA_CLI, strata } from './helpers/strata-cli.js'
import { tempDirFor } from './helpers/tmp.js'
import { Store } from '../src/store/index.js'

const DRIVER = 'overlay2'

function entries(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : []
}

/** Polls (every 2 ms) until `cond` holds or the child exits; true when it held while the child ran. */
function waitFor(child: ReturnType<typeof spawn>, cond: () => boolean): Promise<boolean> {
  return new Promise((resolve) => {
    let exited = false
    child.once('exit', () => {
      exited = true
    })
    const tick = (): void => {
      if (exited) return resolve(false)
      if (cond()) return resolve(true)
      setTimeout(tick, 2)
    }
    tick()
  })
}

function exitOf(child: ReturnType<typeof spawn>): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())))
}

test('debris: kill -9 of a compressed load mid-way, again and again, leaves no spool after the next open', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'gzip')) return
  const work = tempDirFor(t, 'debris-')
  // A 3-layer image of incompressible bytes (~48 MB), saved and gzipped.
  const src = join(work, 'src')
  const store = await Store.open({ root: src, driver: DRIVER })
  try {
    await makeImage(store, {
      layers: [0, 1, 2].map((i) => layerTar({ [`f${i}`]: randomBytesSeeded(16 << 20, i + 1) })),
      created: '2024-01-01T00:00:00Z',
      tags: ['debris:1'],
    })
  } finally {
    await store.close()
  }
  const archive = join(work, 'image.tar')
  const saved = await strata(['save', '-o', archive, 'debris:1'], { root: src, driver: DRIVER })
  assert.equal(saved.code, 0, saved.stderr)
  await run('gzip', ['-1', archive])
  const gz = `${archive}.gz`

  const root = join(work, 'root')
  const scratch = join(root, 'tmp')
  const layerTmp = join(root, 'image', DRIVER, 'layerdb', 'tmp')
  // Kill points, each observed on disk (not timed): the spool dir exists; a layer transaction exists.
  const points: Array<[string, () => boolean]> = [
    ['spooling', () => entries(scratch).length > 0],
    ['registering', () => entries(layerTmp).length > 0],
  ]
  let landed = 0
  for (let round = 0; round < 4; round++) {
    for (const [, cond] of points) {
      const child = spawn(process.execPath, [STRATA_CLI, '--root', root, '-s', DRIVER, 'load', '-q', '-i', gz], { stdio: 'ignore' })
      if (await waitFor(child, cond)) {
        child.kill('SIGKILL')
        landed++
      }
      await exitOf(child)
    }
  }
  // Most kills must land mid-load for the test to mean anything.
  assert.ok(landed >= 4, `only ${landed} of 8 kills landed mid-load`)
  assert.ok(entries(scratch).length > 0 || entries(layerTmp).length > 0, 'the kills left nothing to sweep')

  const check = await strata(['check', '--format', 'json'], { root, driver: DRIVER })
  assert.equal(check.code, 0, check.stderr + check.text)
  const found = check.text
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { kind: string; subject: string; repaired?: string })
  assert.ok(found.length > 0, 'check reported nothing it removed')
  for (const p of found) assert.equal(p.kind, 'debris', JSON.stringify(p))
  assert.deepEqual(entries(scratch), [], 'a spool survived the open')
  assert.deepEqual(entries(layerTmp), [], 'a layer transaction survived the open')

  const again = await strata(['check'], { root, driver: DRIVER })
  assert.equal(again.text, 'No problems found\n')
  const load = await strata(['load', '-i', gz], { root, driver: DRIVER })
  assert.equal(load.code, 0, load.stderr)
  assert.deepEqual(entries(scratch), [])
  const last = await strata(['check'], { root, driver: DRIVER })
  assert.equal(last.text, 'No problems found\n', last.stderr)
})

/** A child that makes an owned dir under `parent` with `prefix`, prints its path, and waits to be killed. */
function ownerChild(parent: string, prefix: string, children: Array<ReturnType<typeof spawn>>): Promise<{ child: ReturnType<typeof spawn>; path: string }> {
  const fsIndex = fileURLToPath(new URL('../src/fs/index.js', import.meta.url))
  const code = `const { makeOwnedDir } = await import(${JSON.stringify(fsIndex)}); const d = makeOwnedDir(${JSON.stringify(parent)}, ${JSON.stringify(prefix)}); process.stdout.write(d.path + '\\n'); setInterval(() => {}, 1000)`
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(child)
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString()
      if (out.endsWith('\n')) resolve({ child, path: out.trim() })
    })
    child.once('exit', () => reject(new Error('owner child exited early')))
  })
}

test('debris: probe and spool dirs of a killed process are swept on open, a live process keeps its own', async (t) => {
  if (!requireRoot(t)) return
  const root = tempDirFor(t, 'debris-owned-')
  const first = await strata(['images', '-q'], { root, driver: DRIVER })
  assert.equal(first.code, 0, first.stderr)
  const home = join(root, DRIVER)
  const scratch = join(root, 'tmp')
  mkdirSync(scratch, { mode: 0o700 })
  const children: Array<ReturnType<typeof spawn>> = []
  t.after(() => {
    for (const c of children) c.kill('SIGKILL')
  })
  const owner = async (parent: string, prefix: string): Promise<{ child: ReturnType<typeof spawn>; path: string }> => {
    const o = await ownerChild(parent, prefix, children)
    return o
  }
  const dead = [await owner(home, 'check-overlayfs-support'), await owner(root, 'opaque-bug-check'), await owner(scratch, 'strata-spool-')]
  const live = [await owner(home, 'check-overlayfs-support'), await owner(scratch, 'strata-spool-')]
  // A half-written file in the spool is swept with its dir.
  writeFileSync(join(dead[2]!.path, 'archive.tar'), 'half')
  for (const o of dead) {
    o.child.kill('SIGKILL')
    await exitOf(o.child)
  }
  const check = await strata(['check', '--format', 'json'], { root, driver: DRIVER })
  assert.equal(check.code, 0, check.stderr)
  const subjects = check.text
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { subject: string }).subject)
    .sort()
  assert.deepEqual(subjects, dead.map((o) => o.path).sort())
  for (const o of dead) assert.equal(existsSync(o.path), false, o.path)
  for (const o of live) assert.equal(existsSync(o.path), true, `${o.path} of a live process was swept`)
})

test('debris: the read-only verbs open without recovery: a writer holding the data-root lock does not stop them, a dead transaction is left to the next writing open', { timeout: 180_000 }, async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'flock')) return
  const root = tempDirFor(t, 'debris-reading-')
  const store = await Store.open({ root, driver: DRIVER })
  try {
    await makeImage(store, { layers: [layerTar({ a: 'x' })], created: '2024-01-01T00:00:00Z', tags: ['reading:1'] })
  } finally {
    await store.close()
  }
  // What a registration killed mid-way leaves: a transaction dir nobody holds.
  const dead = join(root, 'image', DRIVER, 'layerdb', 'tmp', 'write-set-dead')
  mkdirSync(dead)
  // A writer in the middle of a metadata step: the data-root lock held for the whole test.
  // (flock and its sleep both hold the lock: a process group of their own, killed whole.)
  const holder = spawn('flock', ['-x', join(root, 'strata.lock'), 'sleep', '600'], { stdio: 'ignore', detached: true })
  const release = (): void => {
    try {
      process.kill(-holder.pid!, 'SIGKILL')
    } catch {
      // gone already
    }
  }
  t.after(release)
  await new Promise((r) => setTimeout(r, 200))
  for (const args of [['images', '-q'], ['inspect', '-f', '{{.Id}}', 'reading:1'], ['history', '-q', 'reading:1'], ['ps', '-a', '-q'], ['version', '-f', '{{(index .Server.Components 0).Details.StorageDriver}}']]) {
    const o = await strata(args, { root, driver: DRIVER })
    assert.equal(o.code, 0, `${args.join(' ')}: ${o.stderr}`)
    if (args[0] !== 'ps') assert.notEqual(o.text.trim(), '', args.join(' '))
  }
  assert.equal(existsSync(dead), true, 'a reading verb ran the recovery')
  release()
  await exitOf(holder)
  const check = await strata(['check', '--format', 'json'], { root, driver: DRIVER })
  assert.equal(check.code, 0, check.stderr)
  const subjects = check.text
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { subject: string }).subject)
  assert.deepEqual(subjects, [dead])
  assert.equal(existsSync(dead), false)
})

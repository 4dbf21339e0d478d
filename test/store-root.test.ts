/**
 * Bad data roots (issue 22): each refused once, with one clear error that
 * names the root and why, and nothing written anywhere.
 */
import assert from 'node:assert/strict'
import { readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { Store, isStrataError } from '../src/index.js'
import { strata } from './helpers/strata-cli.js'
import { tempDirFor } from './helpers/tmp.js'

test('bad root: --root "" is refused and nothing is made in the current directory', async (t) => {
  const cwd = tempDirFor(t, 'root-empty-')
  const r = await strata(['images'], { root: '', cwd })
  assert.equal(r.code, 1, r.stderr)
  assert.equal(r.stderr, 'Error: Cannot use "" as the data root: the path is empty\n')
  assert.deepEqual(readdirSync(cwd), [])
  await assert.rejects(Store.open({ root: '' }), (err: unknown) => isStrataError(err, 'INVALID_ARGUMENT'))
})

test('bad root: --root FILE is refused naming the file, and the file is untouched', async (t) => {
  const dir = tempDirFor(t, 'root-file-')
  const file = join(dir, 'afile')
  writeFileSync(file, 'keep')
  const r = await strata(['images'], { root: file })
  assert.equal(r.code, 1, r.stderr)
  assert.equal(r.stderr, `Error: Cannot use "${file}" as the data root: it is not a directory\n`)
  const below = await strata(['images'], { root: join(file, 'sub', 'root') })
  assert.equal(below.code, 1, below.stderr)
  assert.equal(below.stderr, `Error: Cannot use "${join(file, 'sub', 'root')}" as the data root: "${file}" is not a directory\n`)
  assert.deepEqual(readdirSync(dir), ['afile'])
})

test('bad root: --root /proc/x is refused at once instead of spinning in mkdir', async () => {
  // The kill after 60 s only keeps a regression from hanging the suite; the refusal takes milliseconds.
  for (const [root, first] of [['/proc/x', '/proc/x'], ['/proc/self/x/y', '/proc/self/x']] as const) {
    const r = await strata(['images'], { root, timeoutMs: 60_000 })
    assert.equal(r.code, 1, `${root}: ${r.stderr}`)
    assert.match(r.stderr, new RegExp(`^Error: Cannot use "${root}" as the data root: cannot create "${first}" \\(ENOENT: `))
  }
})

test('bad root: a fresh root is created with mode 0711, missing parents included', async (t) => {
  const dir = tempDirFor(t, 'root-fresh-')
  const root = join(dir, 'a', 'b')
  const r = await strata(['images', '-q'], { root, driver: 'vfs' })
  assert.equal(r.code, 0, r.stderr)
  assert.equal(statSync(root).mode & 0o7777, 0o711)
})

/**
 * References and repositories.json: docker's normalisation table
 * (distribution/reference ParseNormalizedNamed, FamiliarString) with its
 * error messages; the store writing repositories.json byte for byte as
 * dockerd's json.Marshal + AtomicWriteFile do (familiar names, sorted keys,
 * 0600); docker's refusals (digest as tag, `sha256` as name, moving a tag
 * without force, overwriting a digest); get/delete/referencesTo/all/
 * deleteAllFor; check --repair on dangling references; and several
 * processes tagging at once through the data-root lock without losing a tag.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { sha256Of } from '../src/digest/index.js'
import { StrataError } from '../src/errors/index.js'
import {
  ReferenceStore,
  familiarName,
  familiarString,
  parseReference,
  referenceString,
  withDefaultTag,
  type ImageID,
} from '../src/image/index.js'
import { DataRootLock } from '../src/fs/index.js'
import { tempDirFor } from './helpers/tmp.js'


const ID1 = sha256Of('image one') as ImageID
const ID2 = sha256Of('image two') as ImageID
const D1 = sha256Of('manifest one')
const D2 = sha256Of('manifest two')
const HEX = 'a'.repeat(64)

async function rejectsWith(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof StrataError, `expected a StrataError, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    assert.match(err.message, message)
    return true
  })
}

test('parseReference normalises as docker (ParseNormalizedNamed) and familiarString shortens back', () => {
  // input → [full String(), FamiliarString(), FamiliarString(TagNameOnly)]
  const table: Array<[string, string, string, string]> = [
    ['busybox', 'docker.io/library/busybox', 'busybox', 'busybox:latest'],
    ['library/busybox', 'docker.io/library/busybox', 'busybox', 'busybox:latest'],
    ['docker.io/busybox', 'docker.io/library/busybox', 'busybox', 'busybox:latest'],
    ['index.docker.io/busybox', 'docker.io/library/busybox', 'busybox', 'busybox:latest'],
    ['docker.io/library/busybox:1.36', 'docker.io/library/busybox:1.36', 'busybox:1.36', 'busybox:1.36'],
    ['user/repo', 'docker.io/user/repo', 'user/repo', 'user/repo:latest'],
    ['docker.io/user/repo:v1', 'docker.io/user/repo:v1', 'user/repo:v1', 'user/repo:v1'],
    ['docker.io/library/a/b', 'docker.io/library/a/b', 'library/a/b', 'library/a/b:latest'],
    ['localhost:5000/a/b:t', 'localhost:5000/a/b:t', 'localhost:5000/a/b:t', 'localhost:5000/a/b:t'],
    ['localhost/x', 'localhost/x', 'localhost/x', 'localhost/x:latest'],
    ['Foo.com/x', 'Foo.com/x', 'Foo.com/x', 'Foo.com/x:latest'],
    ['example.com:443/ns/my_img-x.y__z:v1.0-rc_1', 'example.com:443/ns/my_img-x.y__z:v1.0-rc_1', 'example.com:443/ns/my_img-x.y__z:v1.0-rc_1', 'example.com:443/ns/my_img-x.y__z:v1.0-rc_1'],
    [`quay.io/x/y@sha256:${HEX}`, `quay.io/x/y@sha256:${HEX}`, `quay.io/x/y@sha256:${HEX}`, `quay.io/x/y@sha256:${HEX}`],
    [`busybox:1@sha256:${HEX}`, `docker.io/library/busybox:1@sha256:${HEX}`, `busybox:1@sha256:${HEX}`, `busybox:1@sha256:${HEX}`],
    [`sha256:${HEX}`, `docker.io/library/sha256:${HEX}`, `sha256:${HEX}`, `sha256:${HEX}`],
    [`busybox:${'t'.repeat(128)}`, `docker.io/library/busybox:${'t'.repeat(128)}`, `busybox:${'t'.repeat(128)}`, `busybox:${'t'.repeat(128)}`],
  ]
  for (const [input, full, familiar, tagged] of table) {
    const ref = parseReference(input)
    assert.equal(referenceString(ref), full, `${input}: String()`)
    assert.equal(familiarString(ref), familiar, `${input}: FamiliarString()`)
    assert.equal(familiarString(withDefaultTag(ref)), tagged, `${input}: FamiliarString(TagNameOnly())`)
  }
  assert.deepEqual(parseReference('localhost:5000/a/b:t'), { domain: 'localhost:5000', path: 'a/b', tag: 't' })
  assert.deepEqual(parseReference(`quay.io/x/y@sha256:${HEX}`), { domain: 'quay.io', path: 'x/y', digest: `sha256:${HEX}` })
  assert.equal(familiarName(parseReference('docker.io/library/busybox:1')), 'busybox')

  const bad: Array<[string, string]> = [
    ['Busybox', 'invalid reference format: repository name must be lowercase'],
    ['user/Repo:tag', 'invalid reference format: repository name must be lowercase'],
    ['a:b:c', 'invalid reference format'],
    ['busybox:', 'invalid reference format'],
    ['', 'invalid reference format'],
    [`busybox:${'t'.repeat(129)}`, 'invalid reference format'],
    ['busybox:-x', 'invalid reference format'],
    ['-busybox', 'invalid reference format'],
    ['a//b', 'invalid reference format'],
    [HEX, `invalid repository name (${HEX}), cannot specify 64-byte hexadecimal strings`],
    ['busybox@sha256:abc', 'invalid reference format'],
    [`busybox@sha256:${'a'.repeat(32)}`, 'invalid checksum digest length'],
    [`busybox@sha256:${'A'.repeat(64)}`, 'invalid checksum digest format'],
    [`busybox@md5:${'a'.repeat(32)}`, 'unsupported digest algorithm'],
    [`a/${'b'.repeat(250)}`, 'repository name must not be more than 255 characters'],
  ]
  for (const [input, message] of bad) {
    assert.throws(() => parseReference(input), (err: unknown) => {
      assert.ok(err instanceof StrataError && err.code === 'INVALID_ARGUMENT', `${input}: ${String(err)}`)
      assert.equal(err.message, `Invalid reference "${input}": ${message}`)
      return true
    }, input)
  }
})

test('repositories.json: created empty on open, tags and digests written byte for byte as dockerd writes them', async (t) => {
  const root = tempDirFor(t, 'image-ref-')
  const store = await ReferenceStore.open({ root, driverName: 'overlay2', lock: new DataRootLock(root) })
  const path = join(root, 'image', 'overlay2', 'repositories.json')
  assert.equal(store.path, path)
  assert.equal(await readFile(path, 'utf8'), '{"Repositories":{}}')
  assert.equal((await stat(path)).mode & 0o7777, 0o600)
  assert.equal((await stat(join(root, 'image', 'overlay2'))).mode & 0o7777, 0o700)

  assert.deepEqual(await store.addTag('busybox', ID1), { added: true })
  assert.equal(await readFile(path, 'utf8'), `{"Repositories":{"busybox":{"busybox:latest":"${ID1}"}}}`)
  await store.addDigest(`busybox@${D1}`, ID1)
  await store.addTag('localhost:5000/a/b:t', ID2)
  await store.addTag('user/repo:x', ID2)
  await store.addTag('docker.io/library/alpine:3', ID2)
  await store.addDigest(`quay.io/x/y:ignored@${D2}`, ID2)
  await store.addTag('busybox:1.36', ID2)
  const expected =
    '{"Repositories":{' +
    `"alpine":{"alpine:3":"${ID2}"},` +
    `"busybox":{"busybox:1.36":"${ID2}","busybox:latest":"${ID1}","busybox@${D1}":"${ID1}"},` +
    `"localhost:5000/a/b":{"localhost:5000/a/b:t":"${ID2}"},` +
    `"quay.io/x/y":{"quay.io/x/y@${D2}":"${ID2}"},` +
    `"user/repo":{"user/repo:x":"${ID2}"}` +
    '}}'
  assert.equal(await readFile(path, 'utf8'), expected)
  assert.equal((await stat(path)).mode & 0o7777, 0o600)

  // A second store object (another process) sees it all.
  const other = await ReferenceStore.open({ root, driverName: 'overlay2', lock: new DataRootLock(root) })
  assert.equal(await other.get('busybox'), ID1, 'a name alone means :latest')
  assert.equal(await other.get('docker.io/library/busybox:latest'), ID1)
  assert.equal(await other.get(`busybox@${D1}`), ID1)
  assert.equal(await other.get(`busybox:nope@${D1}`), ID1, 'tag+digest looks up by digest')
  assert.equal(await other.get('quay.io/x/y'), undefined)
  assert.equal(await other.get(`quay.io/x/y@${D2}`), ID2)
  assert.equal(await other.get('busybox:2'), undefined)

  assert.deepEqual(
    (await store.referencesTo(ID2)).map(familiarString),
    ['alpine:3', 'busybox:1.36', 'user/repo:x', 'localhost:5000/a/b:t', `quay.io/x/y@${D2}`],
    'sorted by full string (docker.io/... < localhost... < quay.io...)',
  )
  assert.deepEqual((await store.referencesTo(ID1)).map(familiarString), ['busybox:latest', `busybox@${D1}`], 'a name\'s tags before its digests')
  assert.deepEqual((await store.all()).map((e) => `${familiarString(e.ref)}=${e.id === ID1 ? 1 : 2}`), [
    'alpine:3=2',
    'busybox:1.36=2',
    'busybox:latest=1',
    `busybox@${D1}=1`,
    'user/repo:x=2',
    'localhost:5000/a/b:t=2',
    `quay.io/x/y@${D2}=2`,
  ])

  // Removing what was added gives back dockerd's bytes for the rest.
  assert.equal(await store.delete('alpine:3'), ID2)
  assert.equal(await store.delete(`quay.io/x/y@${D2}`), ID2)
  assert.equal(await store.delete('busybox:1.36'), ID2)
  assert.equal(await store.delete('user/repo:x'), ID2)
  assert.equal(await store.delete('localhost:5000/a/b:t'), ID2)
  assert.equal(await readFile(path, 'utf8'), `{"Repositories":{"busybox":{"busybox:latest":"${ID1}","busybox@${D1}":"${ID1}"}}}`)
  await rejectsWith(store.delete('alpine:3'), 'NOT_FOUND', /reference does not exist: alpine:3/)
  assert.deepEqual((await store.deleteAllFor(ID1)).map(familiarString), ['busybox:latest', `busybox@${D1}`])
  assert.equal(await readFile(path, 'utf8'), '{"Repositories":{}}')
})

test('docker\'s refusals: digest as tag, sha256 as name, moving a tag without force, overwriting a digest', async (t) => {
  const root = tempDirFor(t, 'image-ref-refuse-')
  const store = await ReferenceStore.open({ root, driverName: 'vfs', lock: new DataRootLock(root) })
  await rejectsWith(store.addTag(`busybox@${D1}`, ID1), 'INVALID_ARGUMENT', /refusing to create a tag with a digest reference/)
  await rejectsWith(store.addTag(`sha256:${HEX}`, ID1), 'INVALID_ARGUMENT', /^refusing to create an ambiguous tag using digest algorithm as name$/)
  await rejectsWith(store.addDigest(`sha256@${D1}`, ID1), 'INVALID_ARGUMENT', /ambiguous tag using digest algorithm as name/)
  await rejectsWith(store.addDigest('busybox:1', ID1), 'INVALID_ARGUMENT', /has no digest/)
  await rejectsWith(store.addTag('busybox', 'sha256:nope'), 'INVALID_ARGUMENT', /Invalid image ID/)
  await rejectsWith(store.addTag('Busybox', ID1), 'INVALID_ARGUMENT', /repository name must be lowercase/)

  await store.addTag('busybox:1', ID1)
  assert.deepEqual(await store.addTag('busybox:1', ID1), { added: false }, 'the same tag for the same image changes nothing')
  await rejectsWith(
    store.addTag('busybox:1', ID2),
    'ALREADY_EXISTS',
    new RegExp(`^Conflict: Tag busybox:1 is already set to image ${ID1}, if you want to replace it, please use -f option$`),
  )
  assert.deepEqual(await store.addTag('busybox:1', ID2, { force: true }), { added: true, previous: ID1 })
  assert.equal(await store.get('busybox:1'), ID2)

  await store.addDigest(`busybox@${D1}`, ID1)
  assert.deepEqual(await store.addDigest(`busybox@${D1}`, ID1), { added: false })
  await rejectsWith(store.addDigest(`busybox@${D1}`, ID2, { force: true }), 'ALREADY_EXISTS', new RegExp(`Cannot overwrite digest ${D1}`))
  assert.equal(await store.get(`busybox@${D1}`), ID1)
  assert.equal(
    await readFile(store.path, 'utf8'),
    `{"Repositories":{"busybox":{"busybox:1":"${ID2}","busybox@${D1}":"${ID1}"}}}`,
    'the refusals wrote nothing',
  )
})

test('reads a repositories.json as dockerd writes it, rejects a damaged one, check --repair drops dangling references', async (t) => {
  const root = tempDirFor(t, 'image-ref-check-')
  const path = join(root, 'image', 'vfs', 'repositories.json')
  const lock = new DataRootLock(root)
  const store = await ReferenceStore.open({ root, driverName: 'vfs', lock })
  const ghost = sha256Of('ghost')
  await writeFile(
    path,
    `{"Repositories":{"busybox":{"busybox:latest":"${ID1}","busybox@${D1}":"${ID1}"},"gone":{"gone:1":"${ghost}"},"weird":{"Not A Ref":"${ID1}","weird:x":"nope"}}}`,
  )
  assert.equal(await store.get('busybox'), ID1)
  assert.deepEqual((await store.all()).map((e) => familiarString(e.ref)), ['busybox:latest', `busybox@${D1}`, 'gone:1'])

  const exists = async (id: ImageID): Promise<boolean> => id === ID1
  const problems = await store.check({ imageExists: exists })
  assert.deepEqual(problems.map((p) => [p.kind, p.subject]).sort(), [
    ['reference-dangling', 'Not A Ref'],
    ['reference-dangling', 'gone:1'],
    ['reference-dangling', 'weird:x'],
  ])
  assert.ok(problems.every((p) => p.repaired === undefined))
  const repaired = await store.check({ imageExists: exists, repair: true })
  assert.ok(repaired.every((p) => p.repaired === 'removed the reference'))
  assert.equal(await readFile(path, 'utf8'), `{"Repositories":{"busybox":{"busybox:latest":"${ID1}","busybox@${D1}":"${ID1}"}}}`)
  assert.deepEqual(await store.check({ imageExists: exists }), [])

  await writeFile(path, '{"Repositories":')
  await rejectsWith(store.get('busybox'), 'CORRUPT', new RegExp(`Reference store "${path}" is invalid: not JSON`))
  await writeFile(path, '{"Repositories":{"busybox":{"busybox:latest":3}}}')
  await rejectsWith(store.addTag('x', ID1), 'CORRUPT', /"busybox:latest" is not a string/)
})

test('several processes tagging at once through the data-root lock: no tag is lost', async (t) => {
  const root = tempDirFor(t, 'image-ref-conc-')
  const WORKERS = 6
  const TAGS = 15
  const dist = fileURLToPath(new URL('..', import.meta.url))
  const script = join(root, 'worker.mjs')
  // Each worker: the data-root lock, waits for "go", then adds its tags one by one.
  await writeFile(
    script,
    `
import { closeSync, existsSync, openSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { ReferenceStore } from ${JSON.stringify(join(dist, 'src/image/index.js'))}
import { DataRootLock } from ${JSON.stringify(join(dist, 'src/fs/index.js'))}
const [root, worker, count, id] = process.argv.slice(2)
const lock = new DataRootLock(root)
const store = await ReferenceStore.open({ root, driverName: 'overlay2', lock })
writeFileSync(join(root, 'ready-' + worker), '')
while (!existsSync(join(root, 'go'))) await sleep(5)
for (let i = 0; i < Number(count); i++) await store.addTag('w' + worker + '/img:t' + i, id)
`,
  )
  const children = Array.from({ length: WORKERS }, (_, w) => {
    const child = spawn(process.execPath, [script, root, String(w), String(TAGS), w % 2 === 0 ? ID1 : ID2], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const exited = new Promise<void>((resolve, reject) => {
      child.on('error', reject)
      child.on('close', (code, signal) => (code === 0 ? resolve() : reject(new Error(`worker ${w} exited ${code ?? signal}: ${stderr}`))))
    })
    return { child, exited }
  })
  t.after(() => {
    for (const { child } of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  // Start them all at once, once every one is ready.
  const { existsSync } = await import('node:fs')
  const deadline = Date.now() + 30_000
  while (!Array.from({ length: WORKERS }, (_, w) => existsSync(join(root, `ready-${w}`))).every(Boolean)) {
    if (Date.now() > deadline) throw new Error('workers did not start')
    await sleep(10)
  }
  await writeFile(join(root, 'go'), '')
  await Promise.all(children.map((c) => c.exited))

  const store = await ReferenceStore.open({ root, driverName: 'overlay2', lock: new DataRootLock(root) })
  const all = await store.all()
  assert.equal(all.length, WORKERS * TAGS, 'every tag of every worker is in the file')
  for (let w = 0; w < WORKERS; w++) {
    for (let i = 0; i < TAGS; i++) assert.equal(await store.get(`w${w}/img:t${i}`), w % 2 === 0 ? ID1 : ID2)
  }
  // And the file is exactly what dockerd would write for that content.
  const repos: string[] = []
  for (let w = 0; w < WORKERS; w++) {
    const tags = Array.from({ length: TAGS }, (_, i) => `w${w}/img:t${i}`).sort()
    repos.push(`"w${w}/img":{${tags.map((k) => `"${k}":"${w % 2 === 0 ? ID1 : ID2}"`).join(',')}}`)
  }
  assert.equal(await readFile(store.path, 'utf8'), `{"Repositories":{${repos.join(',')}}}`)
})

/**
 * Loads dockerd 20.10 refuses, refused the same way (issue 22), each
 * archive loaded into a real dockerd and into strata:
 *
 * - duplicate paths in a layer tar (`a` twice, `d/` twice): dockerd fails
 *   with tar-split's "duplicates of file paths not supported" and keeps
 *   nothing; so does strata (exit 1, store unchanged);
 * - invalid tags on load (RepoTags `UPPER:tag`, `a:b:c`, a 300-character
 *   name, a name without a tag, a digest reference, and a good tag before
 *   a bad one): dockerd keeps the image (with the tags before the bad one)
 *   and fails with the reference error; so does strata, same words.
 */
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { END_OF_ARCHIVE, encodeHeader, padding } from '../src/archive/tar/index.js'
import { sha256Of } from '../src/digest/index.js'
import { requireDockerd, startDockerd, type Dockerd } from './helpers/dockerd.js'
import { requireRoot } from './helpers/peers.js'
import { strata } from './helpers/strata-cli.js'
import { tempDirFor } from './helpers/tmp.js'

type Entry = { name: string; dir?: boolean; body?: string | Buffer }

function tarOf(entries: Entry[]): Buffer {
  const parts: Buffer[] = []
  for (const e of entries) {
    const body = Buffer.isBuffer(e.body) ? e.body : Buffer.from(e.body ?? '')
    parts.push(encodeHeader({ name: e.name, type: e.dir === true ? 'dir' : 'file', mode: e.dir === true ? 0o755 : 0o644, size: e.dir === true ? 0 : body.length, mtime: { sec: 1700000000, nsec: 0 } }))
    if (e.dir !== true) parts.push(body, padding(body.length))
  }
  parts.push(END_OF_ARCHIVE)
  return Buffer.concat(parts)
}

/** A docker-archive of one image with one layer holding `entries`, named `repoTags`. */
function archive(path: string, entries: Entry[], repoTags: string[]): string {
  const layer = tarOf(entries)
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['sh'] },
      created: '2024-01-01T00:00:00Z',
      rootfs: { type: 'layers', diff_ids: [sha256Of(layer)] },
      history: [{ created: '2024-01-01T00:00:00Z', created_by: 'test' }],
    }),
  )
  const configName = `${sha256Of(config).slice(7)}.json`
  const manifest = Buffer.from(JSON.stringify([{ Config: configName, RepoTags: repoTags, Layers: ['l/layer.tar'] }]))
  writeFileSync(
    path,
    tarOf([
      { name: configName, body: config },
      { name: 'l/layer.tar', body: layer },
      { name: 'manifest.json', body: manifest },
    ]),
  )
  return sha256Of(config)
}

interface Outcome {
  code: number
  message: string
  images: string[]
}

async function dockerLoad(d: Dockerd, file: string): Promise<Outcome> {
  let code = 0
  let message = ''
  try {
    await d.docker(['load', '-i', file])
  } catch (err) {
    code = 1
    message = (err as Error).message
  }
  const ls = await d.docker(['images', '-a', '--no-trunc', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}'])
  return { code, message, images: ls.stdout.toString().trim().split('\n').filter((l) => l !== '').sort() }
}

async function strataLoad(root: string, file: string): Promise<Outcome> {
  const r = await strata(['load', '-q', '-i', file], { root, driver: 'vfs' })
  const ls = await strata(['images', '-a', '--no-trunc', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}'], { root, driver: 'vfs' })
  return { code: r.code, message: r.stderr, images: ls.text.trim().split('\n').filter((l) => l !== '').sort() }
}

test('duplicate paths in a layer tar and invalid tags on load: refused as dockerd 20.10 refuses them', { timeout: 300_000 }, async (t) => {
  if (!requireRoot(t) || !requireDockerd(t)) return
  const work = tempDirFor(t, 'load-parity-')
  const d = await startDockerd(t, { storageDriver: 'vfs' })
  t.after(() => d.stop())
  const cases: Array<{ name: string; entries: Entry[]; tags: string[]; words: string }> = [
    { name: 'file a twice', entries: [{ name: 'a', body: 'first\n' }, { name: 'a', body: 'second!\n' }], tags: ['dup-file:1'], words: 'duplicates of file paths not supported' },
    { name: 'dir d/ twice', entries: [{ name: 'd/', dir: true }, { name: 'd/x', body: 'x' }, { name: 'd/', dir: true }], tags: ['dup-dir:1'], words: 'duplicates of file paths not supported' },
    { name: 'UPPER:tag', entries: [{ name: 'f', body: '1' }], tags: ['UPPER:tag'], words: 'invalid reference format: repository name must be lowercase' },
    { name: 'a:b:c', entries: [{ name: 'f', body: '2' }], tags: ['a:b:c'], words: 'invalid reference format' },
    { name: '300 characters', entries: [{ name: 'f', body: '3' }], tags: [`${'x'.repeat(300)}:t`], words: 'repository name must not be more than 255 characters' },
    { name: 'no tag', entries: [{ name: 'f', body: '4' }], tags: ['busybox'], words: 'invalid tag "busybox"' },
    { name: 'good tag, then a bad one', entries: [{ name: 'f', body: '5' }], tags: ['good:1', 'UPPER:tag'], words: 'invalid reference format: repository name must be lowercase' },
  ]
  const root = join(work, 'root')
  for (const [i, c] of cases.entries()) {
    const file = join(work, `case${i}.tar`)
    archive(file, c.entries, c.tags)
    const theirs = await dockerLoad(d, file)
    const ours = await strataLoad(root, file)
    assert.equal(theirs.code, 1, `${c.name}: dockerd refuses it`)
    assert.ok(theirs.message.includes(c.words), `${c.name}: dockerd says ${JSON.stringify(c.words)}: ${theirs.message}`)
    assert.equal(ours.code, 1, `${c.name}: strata refuses it: ${ours.message}`)
    assert.ok(ours.message.includes(c.words), `${c.name}: strata says ${JSON.stringify(c.words)}: ${ours.message}`)
    assert.deepEqual(ours.images, theirs.images, `${c.name}: the same images and tags are left`)
  }
  const check = await strata(['check'], { root, driver: 'vfs' })
  assert.equal(check.text, 'No problems found\n', check.stderr)
})

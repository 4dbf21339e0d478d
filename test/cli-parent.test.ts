/**
 * An image's parent through docker save → strata load → strata save, side
 * by side with docker 20.10 on dockerd: an image built with the legacy
 * builder FROM another, both saved together (docker writes the child's
 * `Parent` in manifest.json). strata load keeps it, so inspect shows
 * .Parent, history shows the parent's ID on its step, rmi of the parent
 * by ID is refused as docker refuses it, and strata save writes Parent
 * back as docker save does.
 */
import assert from 'node:assert/strict'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { requireDockerd } from './helpers/dockerd.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { sideBySide } from './helpers/side-by-side.js'

interface ManifestItem {
  Config: string
  RepoTags: string[] | null
  Parent?: string
}

test('load keeps Parent from manifest.json: history shows the parent ID, rmi of the parent is refused, save writes Parent back (as docker 20.10)', { timeout: 240_000 }, async (t) => {
  if (!requireRoot(t) || !requireDockerd(t) || !requireTool(t, 'tar')) return
  const { dir, tar, docker, strata } = await sideBySide(t, 'cli-parent-', 'vfs')
  assert.equal(docker(['import', '-c', 'CMD ["sh"]', tar, 'bb:1']).code, 0)
  const ctx = join(dir, 'ctx')
  mkdirSync(ctx)
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM bb:1\nRUN echo a > /a\n')
  const built = docker(['build', '-q', '-t', 'child:1', ctx])
  assert.equal(built.code, 0, built.stderr)
  const parentId = docker(['inspect', '-f', '{{.Id}}', 'bb:1']).stdout.trim()
  assert.equal(docker(['inspect', '-f', '{{.Parent}}', 'child:1']).stdout.trim(), parentId, 'the legacy builder records the parent')

  const manifestOf = async (archive: string): Promise<ManifestItem[]> => {
    const out = join(dir, `x-${archive.replace(/\W/g, '')}`)
    mkdirSync(out)
    await run('tar', ['-C', out, '-xf', archive])
    return JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as ManifestItem[]
  }
  const saved = join(dir, 'docker.tar')
  assert.equal(docker(['save', '-o', saved, 'bb:1', 'child:1']).code, 0)
  const theirs = await manifestOf(saved)
  assert.equal(theirs.find((m) => m.RepoTags?.[0] === 'child:1')?.Parent, parentId, 'docker save writes Parent')

  const loaded = strata(['load', '-i', saved])
  assert.equal(loaded.code, 0, loaded.stderr)
  assert.equal(strata(['inspect', '-f', '{{.Parent}}', 'child:1']).stdout.trim(), parentId)
  for (const args of [['history', '-q', '--no-trunc', 'child:1'], ['history', '--format', '{{.ID}} {{.CreatedBy}}', 'child:1']]) {
    assert.equal(strata(args).stdout, docker(args).stdout, args.join(' '))
  }
  assert.match(strata(['history', '-q', 'child:1']).stdout, new RegExp(`\\n${parentId.slice(7, 19)}\\n`), "the parent's step shows its ID")

  const refused = ['rmi', parentId.slice(7, 19)]
  const [want, got] = [docker(refused), strata(refused)]
  assert.equal(got.code, want.code)
  assert.equal(want.code, 1)
  assert.equal(got.stderr, want.stderr.replace(/^Error response from daemon: /, 'Error: '))
  assert.equal(strata(['inspect', '-f', '{{.Id}}', parentId]).stdout.trim(), parentId, 'the parent is still there')

  const ours = join(dir, 'strata.tar')
  assert.equal(strata(['save', '-o', ours, 'bb:1', 'child:1']).code, 0)
  const written = await manifestOf(ours)
  assert.equal(written.find((m) => m.RepoTags?.[0] === 'child:1')?.Parent, parentId, 'strata save writes Parent back')
  assert.equal(written.find((m) => m.RepoTags?.[0] === 'bb:1')?.Parent, undefined)
})

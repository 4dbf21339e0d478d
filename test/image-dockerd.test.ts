/**
 * strata's image and reference stores against a data root written by a
 * real dockerd 20.10 (vfs driver), both ways:
 *
 * 1. dockerd `docker import`s a busybox root filesystem, tags it several
 *    ways and builds a child image (LABEL step: parent + lastUpdated
 *    metadata). strata then reads that imagedb and repositories.json:
 *    list/get/children/parent/lastUpdated/topChainIds/check, get and
 *    referencesTo (in the order of docker's RepoTags), and rewriting
 *    repositories.json after a tag added and removed gives dockerd's bytes.
 * 2. strata creates an image (a variant of dockerd's config on the same
 *    layer) with a parent, tags it and sets lastUpdated; a fresh dockerd on
 *    the same data root sees it (`docker image inspect`), and removes it
 *    with `docker rmi`, leaving repositories.json byte-identical to before.
 *
 * The layer-dependent calls go to a fake that looks at dockerd's layerdb.
 */
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync } from 'node:fs'
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { chainId, parseDigest, sha256Of, type Digest } from '../src/digest/index.js'
import { StrataError } from '../src/errors/index.js'
import { ImageStore, ReferenceStore, familiarString, type ImageID } from '../src/image/index.js'
import { DataRootLock, RFC3339_NANO_RE } from '../src/fs/index.js'
import type { ChainID, LayerHandle } from '../src/layer/types.js'
import { mountsAtOrUnder, requireDockerd, startDockerd, type Dockerd } from './helpers/dockerd.js'
import { makeBusyboxRootfs } from './helpers/fixtures.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'


/** Layers as dockerd's layerdb has them: present when layerdb/sha256/<chainID hex>/ exists. */
function dockerLayers(dataRoot: string, lock: DataRootLock): { lock: DataRootLock; get(c: ChainID): Promise<LayerHandle>; has(c: ChainID): Promise<boolean> } {
  const dirOf = (c: ChainID): string => join(dataRoot, 'image', 'vfs', 'layerdb', 'sha256', c.slice(7))
  return {
    lock,
    async has(c) {
      return existsSync(dirOf(c))
    },
    async get(c) {
      if (!existsSync(dirOf(c))) throw new StrataError('NOT_FOUND', `layer ${c} does not exist`)
      const diffId = parseDigest((await readFile(join(dirOf(c), 'diff'), 'utf8')).trim())
      return { chainId: c, diffId, parent: null, cacheId: '', size: 0, hasTarSplit: true, release: async () => {} }
    },
  }
}

interface Inspect {
  Id: string
  Parent: string
  RepoTags: string[]
  RootFS: { Type: string; Layers: string[] }
}

async function inspect(d: Dockerd, ref: string): Promise<Inspect> {
  const { stdout } = await d.docker(['image', 'inspect', ref])
  const [one] = JSON.parse(stdout.toString()) as Inspect[]
  assert.ok(one !== undefined, `docker image inspect ${ref}`)
  return one
}

test('strata reads the imagedb and repositories.json dockerd 20.10 wrote, and dockerd reads what strata writes', async (t) => {
  if (!requireRoot(t) || !requireDockerd(t) || !requireTool(t, 'tar', 'busybox')) return
  const scratch = mkdtempSync(join(tmpdir(), 'strata-test-image-dockerd-'))
  const dataRoot = join(scratch, 'data')
  const started: Dockerd[] = []
  t.after(async () => {
    // Stop every dockerd first (idempotent), then remove the scratch dir only when nothing is mounted there.
    for (const d of started) await d.stop()
    const left = mountsAtOrUnder([scratch])
    if (left.length === 0) await rm(scratch, { recursive: true, force: true })
    assert.deepEqual(left, [], `mounts left under ${scratch}`)
  })

  // --- dockerd makes the images ---------------------------------------------
  const first = await startDockerd(t, { storageDriver: 'vfs', dataRoot })
  started.push(first)
  const rootfs = join(scratch, 'rootfs')
  await makeBusyboxRootfs(rootfs)
  const baseTar = join(scratch, 'base.tar')
  await run('tar', ['--numeric-owner', '-C', rootfs, '-cf', baseTar, '.'])
  const base = parseDigest((await first.docker(['import', baseTar, 'strata-test-img:base'])).stdout.toString().trim())
  for (const ref of ['localhost:5000/a/b:t', 'user/repo:x', 'quay.io/x/y:1', 'docker.io/library/strata-test-img:v2']) {
    await first.docker(['tag', 'strata-test-img:base', ref])
  }
  const context = join(scratch, 'context')
  await mkdir(context)
  await writeFile(join(context, 'Dockerfile'), 'FROM strata-test-img:base\nLABEL strata.test=child\n')
  const child = parseDigest((await first.docker(['build', '-q', '-t', 'strata-test-img:child', context])).stdout.toString().trim())
  const baseInspect = await inspect(first, base)
  const childInspect = await inspect(first, child)
  await first.stop()

  // --- strata reads them ------------------------------------------------------
  const imageRoot = join(dataRoot, 'image', 'vfs')
  const lock = new DataRootLock(dataRoot)
  const images = await ImageStore.open({ root: dataRoot, driverName: 'vfs', layers: dockerLayers(dataRoot, lock) })
  const refs = await ReferenceStore.open({ root: dataRoot, driverName: 'vfs', lock })
  const contentDir = join(imageRoot, 'imagedb', 'content', 'sha256')

  assert.deepEqual(await images.list(), [base, child].sort(), 'list() is the imagedb content')
  assert.deepEqual((await readdir(contentDir)).sort(), [base, child].map((i) => i.slice(7)).sort())
  const b = await images.get(base)
  assert.deepEqual(b.raw, await readFile(join(contentDir, base.slice(7))), 'raw is the content file')
  assert.deepEqual(b.config.rootfs.diff_ids, baseInspect.RootFS.Layers)
  assert.equal(b.config.os, 'linux')
  assert.equal(b.parent, undefined)
  const c = await images.get(child)
  assert.equal(c.parent, base, 'the built image names its parent')
  assert.equal(childInspect.Parent, base, 'as dockerd says')
  assert.equal(c.config.config?.Labels?.['strata.test'], 'child')
  const lastUpdated = await readFile(join(imageRoot, 'imagedb', 'metadata', 'sha256', child.slice(7), 'lastUpdated'), 'utf8')
  assert.equal(c.lastUpdated, lastUpdated)
  assert.match(lastUpdated, RFC3339_NANO_RE, `dockerd's lastUpdated (${lastUpdated}) has the format strata writes`)
  assert.equal(b.lastUpdated, await readFile(join(imageRoot, 'imagedb', 'metadata', 'sha256', base.slice(7), 'lastUpdated'), 'utf8'), '`docker tag` set it')
  assert.deepEqual(await images.children(base), [child])
  assert.equal(await images.resolvePrefix(base.slice(7, 19)), base)
  const top = chainId(baseInspect.RootFS.Layers as Digest[])
  assert.deepEqual(await images.topChainIds(), new Set([top]))
  assert.deepEqual(await images.check(), [], 'dockerd\'s imagedb checks clean')

  assert.equal(await refs.get('strata-test-img:base'), base)
  assert.equal(await refs.get('docker.io/library/strata-test-img:v2'), base)
  assert.equal(await refs.get('localhost:5000/a/b:t'), base)
  assert.equal(await refs.get('strata-test-img:child'), child)
  assert.equal(await refs.get('strata-test-img'), undefined, 'no :latest')
  assert.deepEqual((await refs.referencesTo(base)).map(familiarString), baseInspect.RepoTags, 'referencesTo in the order of docker\'s RepoTags')
  assert.deepEqual((await refs.referencesTo(child)).map(familiarString), childInspect.RepoTags)
  assert.deepEqual(await refs.check({ imageExists: (id: ImageID) => images.exists(id) }), [])

  const dockerJson = await readFile(refs.path, 'utf8')
  t.diagnostic(`dockerd's repositories.json: ${dockerJson}`)
  await refs.addTag('strata-test-img:extra', base)
  assert.notEqual(await readFile(refs.path, 'utf8'), dockerJson)
  await refs.delete('strata-test-img:extra')
  assert.equal(await readFile(refs.path, 'utf8'), dockerJson, 'strata rewrites dockerd\'s repositories.json byte for byte')

  // --- strata writes, dockerd reads -------------------------------------------
  const variant = Buffer.from(b.raw.toString().replace('"os":"linux"', '"author":"strata","os":"linux"'))
  assert.notDeepEqual(variant, b.raw)
  const made = await images.create(variant, { parent: base })
  assert.equal(made.id, sha256Of(variant))
  assert.equal(made.created, true)
  await refs.addTag('strata-made:1', made.id)
  const stamp = await images.setLastUpdated(made.id)
  assert.deepEqual(await images.children(base), [child, made.id].sort())

  const second = await startDockerd(t, { storageDriver: 'vfs', dataRoot })
  started.push(second)
  const seen = await inspect(second, 'strata-made:1')
  assert.equal(seen.Id, made.id, 'dockerd finds the image strata made, by its tag')
  assert.equal(seen.Parent, base)
  assert.deepEqual(seen.RootFS.Layers, baseInspect.RootFS.Layers)
  const { stdout: meta } = await second.docker(['image', 'inspect', '--format', '{{.Metadata.LastTagTime}}', made.id])
  t.diagnostic(`dockerd reads strata's lastUpdated ${stamp} as LastTagTime ${meta.toString().trim()}`)
  assert.ok(meta.toString().trim() !== '' && !meta.toString().startsWith('0001-01-01'), 'dockerd parses strata\'s lastUpdated')
  const { stdout: list } = await second.docker(['images', '--format', '{{.Repository}}:{{.Tag}}'])
  assert.ok(list.toString().split('\n').includes('strata-made:1'), `docker images lists strata's tag:\n${list.toString()}`)

  await second.docker(['rmi', 'strata-made:1'])
  await second.stop()
  assert.equal(await readFile(refs.path, 'utf8'), dockerJson, 'after dockerd removed strata\'s tag, the file is dockerd\'s original again')
  assert.deepEqual(await images.list(), [base, child].sort(), 'dockerd deleted strata\'s image from the imagedb')
  assert.deepEqual(await images.check(), [])
})

/**
 * A real multi-layer image made by dockerd 20.10, for tests that check
 * strata against the reference implementation: a `docker import`ed busybox
 * root filesystem, then two RUN steps through the legacy builder (a new
 * dir and file; then a deleted file, a new file in an existing dir, and a
 * directory deleted and made again, i.e. a whiteout and an opaque dir), saved
 * with `docker save`. Building needs a private dockerd (several seconds), so
 * the archive is cached in CACHE_DIR; delete it to rebuild.
 */
import assert from 'node:assert/strict'
import { createReadStream, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { mkdir, rename, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { readTar } from '../../src/archive/tar/index.js'
import { parseDigest, sha256Of, type Digest } from '../../src/digest/index.js'
import { CACHE_DIR } from './debootstrap.js'
import { startDockerd } from './dockerd.js'
import { makeBusyboxRootfs } from './fixtures.js'
import { run } from './peers.js'

export const BASE_TAG = 'strata-test-base:latest'
export const IMAGE_TAG = 'strata-test-3layers:latest'
export const THREE_LAYER_ARCHIVE = join(CACHE_DIR, 'docker-3layers.tar')

export const DOCKERFILE = `FROM ${BASE_TAG}
RUN mkdir /data && echo one > /data/one
RUN rm /etc/passwd && echo two > /data/two && rm -rf /home && mkdir -m 0750 /home && echo new > /home/new
`

export interface DockerArchiveImage {
  /** The config file's exact bytes; the image ID is their sha256. */
  configBytes: Buffer
  imageId: Digest
  diffIds: Digest[]
  /** Layer tars in manifest order, base first. */
  layers: Buffer[]
  repoTags: string[]
}

/** manifest.json, the config and the layer tars of a one-image docker-archive, read with strata's own tar reader. */
export async function readDockerArchive(path: string): Promise<DockerArchiveImage> {
  const files = new Map<string, Buffer>()
  for await (const entry of readTar(createReadStream(path))) {
    const chunks: Buffer[] = []
    for await (const c of entry.body()) chunks.push(c)
    if (entry.header.type === 'file') files.set(entry.header.name.replace(/^\.\//, ''), Buffer.concat(chunks))
  }
  const manifest = JSON.parse(files.get('manifest.json')?.toString() ?? 'null') as Array<{ Config: string; Layers: string[]; RepoTags: string[] | null }> | null
  assert.ok(manifest !== null && manifest.length === 1, 'manifest.json holds one image')
  const { Config, Layers, RepoTags } = manifest[0]!
  const configBytes = files.get(Config)
  assert.ok(configBytes !== undefined, `config ${Config} is in the archive`)
  const config = JSON.parse(configBytes.toString()) as { rootfs: { type: string; diff_ids: string[] } }
  const layers = Layers.map((l) => {
    const buf = files.get(l)
    assert.ok(buf !== undefined, `layer ${l} is in the archive`)
    return buf
  })
  return { configBytes, imageId: sha256Of(configBytes), diffIds: config.rootfs.diff_ids.map(parseDigest), layers, repoTags: RepoTags ?? [] }
}

/** The cached 3-layer docker-archive, built with a private dockerd (overlay2) the first time. */
export async function threeLayerArchive(t: TestContext): Promise<string> {
  if (existsSync(THREE_LAYER_ARCHIVE)) return THREE_LAYER_ARCHIVE
  const scratch = mkdtempSync(join(tmpdir(), 'strata-docker-image-'))
  try {
    const dockerd = await startDockerd(t, { storageDriver: 'overlay2' })
    try {
      const rootfs = join(scratch, 'rootfs')
      await makeBusyboxRootfs(rootfs)
      const baseTar = join(scratch, 'base.tar')
      await run('tar', ['--numeric-owner', '-C', rootfs, '-cf', baseTar, '.'])
      await dockerd.docker(['import', baseTar, BASE_TAG])
      const context = join(scratch, 'context')
      await mkdir(context)
      await writeFile(join(context, 'Dockerfile'), DOCKERFILE)
      await dockerd.docker(['build', '--network', 'none', '-q', '-t', IMAGE_TAG, context])
      const saved = join(scratch, 'image.tar')
      await dockerd.docker(['save', '-o', saved, IMAGE_TAG])
      const image = await readDockerArchive(saved)
      assert.equal(image.layers.length, 3, 'the image has 3 layers')
      mkdirSync(CACHE_DIR, { recursive: true })
      const tmp = `${THREE_LAYER_ARCHIVE}.tmp-${process.pid}`
      await run('cp', [saved, tmp])
      await rename(tmp, THREE_LAYER_ARCHIVE)
    } finally {
      await dockerd.stop()
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true })
  }
  return THREE_LAYER_ARCHIVE
}

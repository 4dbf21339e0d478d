/**
 * strata against podman 4.3, through the strata CLI, podman on private
 * storage (test/helpers/podman.ts):
 *
 * - the dockerd-made archive loaded into podman, then `podman save` as
 *   docker-archive and as oci-archive, each loaded by strata;
 * - `strata save --format oci-archive` loaded by a fresh podman.
 *
 * podman's docker-archive keeps the config bytes, so the image ID is the
 * original one. Its oci-archive does not: podman (containers/image)
 * rewrites the config in OCI form (only the OCI fields, e.g. no
 * container_config) and gzips the layers, so that image's ID is the
 * digest of the rewritten config, while the diffIDs stay the same.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { parseDigest, sha256Of } from '../src/digest/index.js'
import { Store } from '../src/store/index.js'
import { readTar } from '../src/archive/tar/index.js'
import { createReadStream } from 'node:fs'
import { IMAGE_TAG, readDockerArchive, threeLayerArchive } from './helpers/docker-image.js'
import { requireDockerd } from './helpers/dockerd.js'
import { requireRoot } from './helpers/peers.js'
import { privatePodman, requirePodman } from './helpers/podman.js'
import { strata } from './helpers/strata-cli.js'
import { tempDirFor } from './helpers/tmp.js'
import { storedImage } from './helpers/image-view.js'

const PODMAN_NAME = `localhost/${IMAGE_TAG}`

/** The files of a (small) tar archive by name. */
async function tarFiles(path: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>()
  for await (const entry of readTar(createReadStream(path))) {
    const chunks: Buffer[] = []
    for await (const c of entry.body()) chunks.push(c)
    if (entry.header.type === 'file') files.set(entry.header.name.replace(/^\.\//, ''), Buffer.concat(chunks))
  }
  return files
}

/** The config digest of the one image an OCI archive holds (index.json → manifest → config). */
async function ociConfigDigest(path: string): Promise<string> {
  const files = await tarFiles(path)
  const blob = (digest: string): Buffer => {
    const b = files.get(`blobs/sha256/${parseDigest(digest).slice(7)}`)
    assert.ok(b !== undefined, `blob ${digest} is in ${path}`)
    return b
  }
  const index = JSON.parse(files.get('index.json')!.toString()) as { manifests: Array<{ digest: string }> }
  assert.equal(index.manifests.length, 1)
  const manifest = JSON.parse(blob(index.manifests[0]!.digest).toString()) as { config: { digest: string } }
  assert.equal(sha256Of(blob(manifest.config.digest)), manifest.config.digest)
  return manifest.config.digest
}

test('podman interop: podman save (docker-archive, oci-archive) → strata load; strata save oci-archive → podman load', async (t) => {
  if (!requireRoot(t) || !requirePodman(t) || !requireDockerd(t)) return
  const archive = await threeLayerArchive(t)
  const original = await readDockerArchive(archive)
  const dir = tempDirFor(t, 'interop-podman-')
  const root = join(dir, 'root')
  const podman = privatePodman(t)

  await podman.podman(['load', '-q', '-i', archive])
  assert.equal(await podman.imageId(PODMAN_NAME), original.imageId, 'podman keeps the docker-archive\'s image ID')
  const dockerArchive = join(dir, 'podman-docker.tar')
  const ociArchive = join(dir, 'podman-oci.tar')
  await podman.podman(['save', '-q', '--format', 'docker-archive', '-o', dockerArchive, PODMAN_NAME])
  await podman.podman(['save', '-q', '--format', 'oci-archive', '-o', ociArchive, PODMAN_NAME])

  const fromDocker = await strata(['load', '-i', dockerArchive], { root })
  assert.equal(fromDocker.code, 0, fromDocker.stderr)
  assert.equal(fromDocker.text, `Loaded image: ${PODMAN_NAME}\n`)
  assert.deepEqual(await storedImage(root, PODMAN_NAME), { id: original.imageId, diffIds: original.diffIds })

  // Same root: the layers are there already; only the rewritten config is new.
  const fromOci = await strata(['load', '-i', ociArchive], { root })
  assert.equal(fromOci.code, 0, fromOci.stderr)
  const ociId = await ociConfigDigest(ociArchive)
  assert.notEqual(ociId, original.imageId, 'podman rewrote the config for OCI (if this fails, the IDs may now be compared directly)')
  assert.match(fromOci.text, /^Loaded image( ID)?: .+\n$/)
  const store = await Store.open({ root })
  try {
    assert.ok(await store.images.exists(ociId), 'the OCI image is stored under its config digest')
    assert.deepEqual((await store.images.get(ociId)).config.rootfs.diff_ids, original.diffIds, 'with the same diffIDs')
    assert.equal((await store.layers.list()).length, 3, 'sharing the three layers')
  } finally {
    await store.close()
  }

  // strata's OCI archive into a podman that has never seen the image.
  const strataOci = join(dir, 'strata-oci.tar')
  const saved = await strata(['save', '--format', 'oci-archive', '-o', strataOci, original.imageId], { root })
  assert.equal(saved.code, 0, saved.stderr)
  const fresh = privatePodman(t)
  await fresh.podman(['load', '-q', '-i', strataOci])
  const { stdout } = await fresh.podman(['images', '-q', '--no-trunc'])
  assert.deepEqual(stdout.toString().trim().split('\n'), [original.imageId], 'podman loads strata\'s OCI archive as the same image ID')
  assert.deepEqual(await fresh.diffIds(original.imageId.slice(7)), original.diffIds)
})

/**
 * strata against skopeo 1.9, through the strata CLI:
 *
 * - `skopeo copy docker-archive:X oci:DIR:tag` → `strata load -i DIR`.
 *   skopeo converts the image to OCI on the way: it rewrites the config
 *   in OCI form (dropping Docker-only fields such as container_config)
 *   and gzips the layers. The config bytes change, so the image ID
 *   legitimately differs; it must be the digest of skopeo's config, and
 *   the diffIDs must be the original ones.
 * - `skopeo copy docker-archive:X docker-archive:Y:ref` keeps the config
 *   bytes → `strata load` gives the original image ID, tagged ref.
 * - `strata save --format oci-archive` → `skopeo copy oci-archive:...
 *   docker-archive:...` reads strata's output: same config bytes (so the
 *   same image ID), diffIDs and layer tars.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseDigest, sha256Of } from '../src/digest/index.js'
import { readDockerArchive, threeLayerArchive } from './helpers/docker-image.js'
import { requireDockerd } from './helpers/dockerd.js'
import { requireRoot } from './helpers/peers.js'
import { requireSkopeo, skopeoCopy } from './helpers/skopeo.js'
import { strata } from './helpers/strata-cli.js'
import { tempDirFor } from './helpers/tmp.js'
import { storedImage } from './helpers/image-view.js'

test('skopeo interop: oci: and docker-archive: copies load into strata; skopeo reads strata\'s oci-archive', async (t) => {
  if (!requireRoot(t) || !requireSkopeo(t) || !requireDockerd(t)) return
  const archive = await threeLayerArchive(t)
  const original = await readDockerArchive(archive)
  const dir = tempDirFor(t, 'interop-skopeo-')
  const tmp = join(dir, 'tmp')
  mkdirSync(tmp)
  const root = join(dir, 'root')

  // docker-archive → OCI layout: a rewritten config, the same layers.
  const layout = join(dir, 'layout')
  await skopeoCopy(`docker-archive:${archive}`, `oci:${layout}:v1`, tmp)
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }
  const blob = (d: string): Buffer => readFileSync(join(layout, 'blobs', 'sha256', parseDigest(d).slice(7)))
  const manifest = JSON.parse(blob(index.manifests[0]!.digest).toString()) as { config: { digest: string }; layers: Array<{ mediaType: string }> }
  const skopeoConfigId = manifest.config.digest
  assert.notEqual(skopeoConfigId, original.imageId, 'skopeo rewrote the config (if this fails, compare the IDs directly)')
  assert.equal(sha256Of(blob(skopeoConfigId)), skopeoConfigId)
  const fromLayout = await strata(['load', '-i', layout], { root })
  assert.equal(fromLayout.code, 0, fromLayout.stderr)
  const ociLoaded = await storedImage(root, skopeoConfigId)
  assert.equal(ociLoaded.id, skopeoConfigId, 'the image ID is the digest of skopeo\'s config')
  assert.deepEqual(ociLoaded.diffIds, original.diffIds, 'the diffIDs are the original ones')

  // docker-archive → docker-archive with a new name: the config bytes are kept.
  const copied = join(dir, 'copied.tar')
  await skopeoCopy(`docker-archive:${archive}`, `docker-archive:${copied}:foo/bar:v2`, tmp)
  const fromArchive = await strata(['load', '-i', copied], { root })
  assert.equal(fromArchive.code, 0, fromArchive.stderr)
  assert.equal(fromArchive.text, 'Loaded image: foo/bar:v2\n')
  assert.deepEqual(await storedImage(root, 'foo/bar:v2'), { id: original.imageId, diffIds: original.diffIds })

  // strata's OCI archive, read by skopeo.
  const strataOci = join(dir, 'strata-oci.tar')
  const saved = await strata(['save', '--format', 'oci-archive', '-o', strataOci, 'foo/bar:v2'], { root })
  assert.equal(saved.code, 0, saved.stderr)
  const back = join(dir, 'back.tar')
  await skopeoCopy(`oci-archive:${strataOci}`, `docker-archive:${back}:back/again:1`, tmp)
  const read = await readDockerArchive(back)
  assert.deepEqual(read.diffIds, original.diffIds)
  assert.deepEqual(read.layers.map((l) => sha256Of(l)), original.layers.map((l) => sha256Of(l)), 'skopeo got the layer tars byte for byte')
  assert.deepEqual(read.repoTags, ['docker.io/back/again:1'], 'skopeo writes RepoTags in full form')
  // strata's OCI archive carries the config bytes as stored, and skopeo keeps them going back to docker-archive.
  assert.ok(read.configBytes.equals(original.configBytes), 'the config bytes survive strata → OCI → skopeo → docker-archive')
})

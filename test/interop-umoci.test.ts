/**
 * strata against umoci 0.4.7: an OCI layout written by `strata save
 * --format oci-layout`, unpacked by umoci into a runtime bundle, gives the
 * same tree as the strata store's own mounted view of the image (names,
 * types, modes, owners, sizes, content hashes, link targets, hardlinks,
 * times, xattrs). umoci applies the layer tars itself, whiteouts and
 * opaque dirs included, so this checks both strata's layout and its
 * layer store against an independent implementation.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { IMAGE_TAG, threeLayerArchive } from './helpers/docker-image.js'
import { requireDockerd } from './helpers/dockerd.js'
import { snapshotImage } from './helpers/image-view.js'
import { requireRoot } from './helpers/peers.js'
import { strata } from './helpers/strata-cli.js'
import { tempDirFor } from './helpers/tmp.js'
import { assertSameTree, snapshotTree } from './helpers/tree.js'
import { requireUmoci, umociUnpack } from './helpers/umoci.js'

const REF_NAME = 'org.opencontainers.image.ref.name'

test('umoci interop: umoci unpack of strata\'s OCI layout equals strata\'s mounted view', async (t) => {
  if (!requireRoot(t) || !requireUmoci(t) || !requireDockerd(t)) return
  const archive = await threeLayerArchive(t)
  const dir = tempDirFor(t, 'interop-umoci-')
  const root = join(dir, 'root')
  const loaded = await strata(['load', '-q', '-i', archive], { root })
  assert.equal(loaded.code, 0, loaded.stderr)

  const layout = join(dir, 'layout')
  const saved = await strata(['save', '--format', 'oci-layout', '-o', layout, IMAGE_TAG], { root })
  assert.equal(saved.code, 0, saved.stderr)
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ annotations?: Record<string, string> }> }
  assert.equal(index.manifests.length, 1)
  const tag = index.manifests[0]!.annotations?.[REF_NAME]
  assert.ok(tag !== undefined, `strata names the image in index.json (${REF_NAME})`)

  const bundle = join(dir, 'bundle')
  await umociUnpack(layout, tag, bundle)
  // The root directory itself is umoci's (it makes rootfs/ before applying anything), so it is left out.
  const notRoot = (p: string): boolean => p === '.'
  const fromUmoci = await snapshotTree(join(bundle, 'rootfs'), { ignore: notRoot })
  const fromStrata = await snapshotImage(root, IMAGE_TAG, { ignore: notRoot })
  assert.ok(fromStrata.size > 100 && fromStrata.get('data/two')?.type === 'file', 'the view holds the whole image (busybox and its applet links, the RUN files)')
  assert.equal(fromStrata.has('etc/passwd'), false, 'the whiteout took effect')
  assertSameTree(fromStrata, fromUmoci, 'strata view vs umoci unpack')
})

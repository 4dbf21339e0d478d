/**
 * strata migrate against the reference: dockerd 20.10 opens what strata
 * migrated and runs its containers with their changes.
 *
 * - An aufs root as dockerd 20.10 wrote it (helpers/aufs-root.ts; this
 *   machine has no aufs to run dockerd on) migrated to overlay2: dockerd
 *   lists the image under its ID and tag, `docker start -a` runs the
 *   changed container, which finds its changes; `docker diff` and `docker
 *   export` say exactly what they said before the root was aufs; images
 *   and containers can be removed.
 * - dockerd's own overlay2 root migrated to vfs: dockerd opens it with
 *   --storage-driver vfs, same checks.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { MNT_DETACH, umount2 } from '../src/sys/index.js'
import { CHANGE_SCRIPT, CHANGED_OUTPUT, exportListing, makeDockerdAufsRoot, type ExportEntry } from './helpers/aufs-root.js'
import { IMAGE_TAG, threeLayerArchive } from './helpers/docker-image.js'
import { mountsAtOrUnder, requireDockerd, startDockerd, type Dockerd } from './helpers/dockerd.js'
import { requireRoot, requireTool } from './helpers/peers.js'
import { strata } from './helpers/strata-cli.js'

async function scratch(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'strata-test-migrate-dockerd-'))
  t.after(async () => {
    const left = mountsAtOrUnder([dir])
    for (const m of left) umount2(m, MNT_DETACH)
    await rm(dir, { recursive: true, force: true })
    assert.deepEqual(left, [], `mounts left under ${dir}`)
  })
  return dir
}

function listingDifferences(a: Map<string, ExportEntry>, b: Map<string, ExportEntry>): string[] {
  const out: string[] = []
  for (const p of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    if (JSON.stringify(a.get(p)) !== JSON.stringify(b.get(p))) out.push(`${p}: ${JSON.stringify(a.get(p))} != ${JSON.stringify(b.get(p))}`)
  }
  return out
}

/** What dockerd says about the image and the changed container on `dockerd`. */
async function observe(dockerd: Dockerd): Promise<{ images: string; output: string; diff: string[]; view: Map<string, ExportEntry>; one: string }> {
  const images = (await dockerd.docker(['images', '--no-trunc', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}'])).stdout.toString()
  const output = (await dockerd.docker(['start', '-a', 'changed'])).stdout.toString()
  const diff = (await dockerd.docker(['diff', 'changed'])).stdout.toString().trim().split('\n').sort()
  const view = await exportListing((await dockerd.docker(['export', 'changed'])).stdout)
  const one = (await dockerd.docker(['run', '--rm', '--network', 'none', IMAGE_TAG, 'cat', '/data/one'])).stdout.toString()
  return { images, output, diff, view, one }
}

test('dockerd 20.10 opens an aufs root strata migrated to overlay2 and runs its containers with their changes', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'fuse-overlayfs', 'runc', 'busybox', 'tar') || !requireDockerd(t)) return
  const dir = await scratch(t)
  const fx = await makeDockerdAufsRoot(t, join(dir, 'root'))
  const migrated = await strata(['migrate', '--to', 'overlay2', '--prune-source'], { root: fx.root })
  assert.equal(migrated.code, 0, migrated.stderr)
  assert.match(migrated.text, /from aufs to overlay2: 3 layers and 2 containers copied and verified/)

  const dockerd = await startDockerd(t, { storageDriver: 'overlay2', dataRoot: fx.root })
  try {
    const seen = await observe(dockerd)
    assert.equal(seen.images, `${fx.imageId} ${fx.repoTags[0]}\n`, 'the image keeps its ID and tag')
    assert.equal(seen.output, CHANGED_OUTPUT, 'the container runs and finds its changes')
    assert.deepEqual(seen.diff, fx.changed.diff, 'docker diff says what it said before')
    assert.deepEqual(listingDifferences(seen.view, fx.changed.view), [], 'docker export writes what it wrote before')
    assert.equal(seen.one, 'one\n')
    await dockerd.docker(['rm', 'changed', 'fresh'])
    await dockerd.docker(['rmi', IMAGE_TAG])
    assert.equal((await dockerd.docker(['images', '-aq'])).stdout.toString(), '', 'dockerd deletes the migrated layers')
  } finally {
    await dockerd.stop()
  }
})

test("dockerd 20.10 opens with -s vfs its own overlay2 root that strata migrated to vfs", async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'runc', 'busybox', 'tar') || !requireDockerd(t)) return
  const dir = await scratch(t)
  const root = join(dir, 'root')
  const archive = await threeLayerArchive(t)
  let before: Awaited<ReturnType<typeof observe>>
  const first = await startDockerd(t, { storageDriver: 'overlay2', dataRoot: root })
  try {
    await first.docker(['load', '-i', archive])
    await first.docker(['run', '--name', 'changed', '--network', 'none', IMAGE_TAG, 'sh', '-c', CHANGE_SCRIPT])
    await first.docker(['create', '--name', 'fresh', '--network', 'none', IMAGE_TAG, 'cat', '/data/one'])
    before = await observe(first)
  } finally {
    await first.stop()
  }
  assert.equal(before.output, CHANGED_OUTPUT)

  const migrated = await strata(['migrate', '--to', 'vfs'], { root })
  assert.equal(migrated.code, 0, migrated.stderr)
  assert.match(migrated.text, /from overlay2 to vfs: 3 layers and 2 containers copied and verified/)
  assert.match(migrated.text, /use -s vfs/)

  const second = await startDockerd(t, { storageDriver: 'vfs', dataRoot: root })
  try {
    const after = await observe(second)
    assert.equal(after.images, before.images)
    assert.equal(after.output, CHANGED_OUTPUT)
    assert.deepEqual(after.diff, before.diff)
    assert.deepEqual(listingDifferences(after.view, before.view), [])
    assert.equal(after.one, 'one\n')
  } finally {
    await second.stop()
  }
  const cleanup = await strata(['migrate', '--cleanup'], { root })
  assert.equal(cleanup.code, 0, cleanup.stderr)
})

/**
 * A data root with a real image in it, for the container tests: the
 * 3-layer image dockerd built (helpers/docker-image.ts: busybox, then
 * /data/one, then a whiteout of /etc/passwd and an opaque /home),
 * registered layer by layer, its config stored and tagged. The teardown
 * removes every container (runc's state included, by the containers' IDs)
 * and every mount, closes the store, detaches anything left mounted and
 * fails the test if something was.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import type { TestContext } from 'node:test'
import { attachContainer, logSize, removeContainer, startContainer } from '../../src/container/index.js'
import { isStrataError } from '../../src/errors/index.js'
import type { Digest } from '../../src/digest/index.js'
import { Store } from '../../src/store/index.js'
import { MNT_DETACH, umount2 } from '../../src/sys/index.js'
import { IMAGE_TAG, readDockerArchive, threeLayerArchive, type DockerArchiveImage } from './docker-image.js'
import { mountsAtOrUnder } from './dockerd.js'
import { run } from './peers.js'

export interface ContainerEnv {
  store: Store
  root: string
  image: DockerArchiveImage
  imageId: Digest
}

/** Registers `image` in `store` (layers, config, tag). */
export async function loadImage(store: Store, image: DockerArchiveImage, tag = IMAGE_TAG): Promise<Digest> {
  const handles: Array<{ release(): Promise<void> }> = []
  try {
    let parent: Digest | null = null
    for (const [i, tar] of image.layers.entries()) {
      const { layer } = await store.layers.register(Readable.from([tar]), parent, { expectedDiffId: image.diffIds[i]! })
      handles.push(layer)
      parent = layer.chainId
    }
    const { id } = await store.images.create(image.configBytes)
    await store.references.addTag(tag, id)
    return id
  } finally {
    // Released only once the image holds the top layer (an unreferenced layer is collected on release).
    for (const h of handles.reverse()) await h.release()
  }
}

/**
 * Opens a store on a fresh data root (or `root`, e.g. on a loop btrfs)
 * with the 3-layer image loaded. Teardown as described above.
 */
export async function containerEnv(t: TestContext, driver: string, root?: string): Promise<ContainerEnv> {
  const dataRoot = root ?? mkdtempSync(join(tmpdir(), `strata-test-container-${driver}-`))
  const archive = await threeLayerArchive(t)
  const image = await readDockerArchive(archive)
  const store = await Store.open({ root: dataRoot, driver })
  t.after(async () => {
    const errors: unknown[] = []
    try {
      for (const c of await store.containers.list()) {
        await run('runc', ['delete', '--force', c.id]).catch(() => {})
        await removeContainer(store, c.id, { force: true }).catch((e: unknown) => errors.push(e))
      }
      for (const m of await store.layers.listMounts()) await store.layers.removeMount(m.name, { force: true }).catch((e: unknown) => errors.push(e))
      await store.close()
    } finally {
      const left = mountsAtOrUnder([dataRoot])
      for (const m of left) umount2(m, MNT_DETACH)
      if (root === undefined) rmSync(dataRoot, { recursive: true, force: true })
      assert.deepEqual(left, [], `mounts left under ${dataRoot}`)
    }
    if (errors.length > 0) throw errors[0]
  })
  const imageId = await loadImage(store, image)
  return { store, root: dataRoot, image, imageId }
}

export interface Ran {
  code: number
  stdout: string
  stderr: string
}

/** A Writable that keeps what it is given. */
function collector(): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = []
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      chunks.push(Buffer.from(chunk))
      cb()
    },
  })
  return { stream, text: () => Buffer.concat(chunks).toString() }
}

/**
 * Starts container `id` (its monitor runs it) and follows it to its exit,
 * as `strata start -a` does: its exit code and output. A start that fails
 * gives the exit code the record keeps for it (127, 126, 128) and the
 * error as stderr.
 */
export async function startToExit(store: Store, id: string): Promise<Ran> {
  const out = collector()
  const err = collector()
  const offset = await logSize(store, id)
  try {
    await startContainer(store, id)
  } catch (e) {
    if (isStrataError(e) && typeof e.details.exitCode === 'number') return { code: e.details.exitCode, stdout: '', stderr: e.message }
    throw e
  }
  const { exitCode } = await attachContainer(store, id, { fromOffset: offset, stdout: out.stream, stderr: err.stream })
  return { code: exitCode, stdout: out.text(), stderr: err.text() }
}

/**
 * `docker import`: a root filesystem tar (plain, gzip or zstd; a file or
 * stdin) becomes a one-layer image, with the config dockerd 20.10 writes
 * for it (daemon/images/image_import.go), Go-encoded with sorted keys:
 *
 *   {"architecture":"amd64","comment":"Imported from -","config":{...},
 *    "container_config":{...},"created":"<now, UTC>","history":[{"created":
 *    "<same>","comment":"Imported from -"}],"os":"linux","rootfs":{"type":
 *    "layers","diff_ids":["sha256:..."]}}
 *
 * `config` is the empty container config with the `changes` applied,
 * `container_config` the empty one. docker also writes its own version in
 * `docker_version`; strata is not docker and leaves the field out (it is
 * omitempty in docker's struct). Everything the caller gave is validated
 * before the tar is read; a failure afterwards removes the new layer and
 * image again. The tag, when given, is moved to the new image as docker
 * does.
 */
import type { Readable } from 'node:stream'
import { StrataError } from '../errors/index.js'
import { goJsonString, formatRfc3339Nano, nowNs } from '../fs/index.js'
import { applyChanges, parseReference, referenceString, withDefaultTag, type Reference } from '../image/index.js'
import type { Store } from '../store/index.js'
import { goJsonSortedObject, marshalContainerConfig, objectFromPairs } from './go-config.js'
import { hostPlatform } from './platform.js'
import type { ImportOptions, ImportResult } from './types.js'

function importReference(input: string): Reference {
  const ref = parseReference(input)
  if (ref.digest !== undefined) throw new StrataError('INVALID_ARGUMENT', `Cannot import to a digest reference ("${input}")`)
  return withDefaultTag(ref)
}

/**
 * Registers `stream` as a base layer and stores an image made of it.
 * @example
 * const { id } = await importRootfs(store, createReadStream('rootfs.tar'), { reference: 'busybox:imported', sourceName: 'rootfs.tar' })
 */
export async function importRootfs(store: Store, stream: Readable, opts: ImportOptions = {}): Promise<ImportResult> {
  let ref: Reference | undefined
  let config: string
  let platform
  try {
    ref = opts.reference === undefined || opts.reference === '' ? undefined : importReference(opts.reference)
    config = marshalContainerConfig(applyChanges(opts.changes ?? []))
    platform = opts.platform ?? hostPlatform()
    if (platform.os !== process.platform) {
      throw new StrataError('NOT_SUPPORTED', `Cannot import an image for operating system "${platform.os}" on ${process.platform}`)
    }
  } catch (err) {
    stream.destroy()
    throw err
  }
  const comment = opts.message !== undefined && opts.message !== '' ? opts.message : `Imported from ${opts.sourceName ?? '-'}`

  const progress = opts.onProgress
  const event = { image: 0, layer: 0, diffId: '' as ImportResult['diffId'] }
  progress?.({ ...event, phase: 'waiting', current: 0 })
  const { layer } = await store.layers.register(stream, null, {
    ...(progress === undefined ? {} : { onProgress: (n: number) => progress({ ...event, phase: 'copying', current: n }) }),
  })
  try {
    progress?.({ ...event, diffId: layer.diffId, phase: 'done', current: layer.size })
    const created = goJsonString(formatRfc3339Nano(nowNs(), 0))
    const fields: Record<string, string> = {
      architecture: goJsonString(platform.architecture),
      comment: goJsonString(comment),
      config,
      container_config: marshalContainerConfig({}),
      created,
      history: `[${objectFromPairs([
        ['created', created],
        ['comment', goJsonString(comment)],
      ])}]`,
      os: goJsonString(platform.os),
      rootfs: `{"type":"layers","diff_ids":[${goJsonString(layer.diffId)}]}`,
    }
    if (platform.variant !== undefined && platform.variant !== '') fields.variant = goJsonString(platform.variant)
    const { id, created: isNew } = await store.images.create(Buffer.from(goJsonSortedObject(fields)))
    if (ref === undefined) return { id, diffId: layer.diffId }
    try {
      await store.references.addTag(ref, id, { force: true })
    } catch (err) {
      if (isNew) await store.images.delete(id).catch(() => {})
      throw err
    }
    return { id, diffId: layer.diffId, tagged: referenceString(ref) }
  } finally {
    // The image holds the layer now; without one (a failure) this deletes a layer this import made.
    await layer.release()
  }
}

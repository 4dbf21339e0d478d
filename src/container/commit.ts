/**
 * commitContainer: docker commit (dockerd 20.10's daemon/commit.go and
 * image.NewChildImage) without a daemon.
 *
 * The container's changes (the mounted layer's diff against its init
 * layer) are registered as a layer on the image's top chainID, and a child
 * config is written: the parent's rootfs plus the new diffID, the parent's
 * history plus one entry {created, author, created_by: the container's Cmd
 * joined by spaces, comment}, `config` = the container's Config with the
 * `changes` applied (src/image's one --change engine), `container_config` = the container's Config,
 * `container` = its ID. The image's `parent` metadata names the image the
 * container was made from, and a reference is tagged (moved if it exists)
 * when asked.
 *
 * Nothing changed: the diff is an empty tar (1024 zero bytes, diffID
 * sha256:5f70bf18...), which dockerd does not add to rootfs; its history
 * entry is marked empty_layer. The layer registered meanwhile is released
 * and so collected again, as dockerd's deferred ReleaseAndLog does.
 */
import { StrataError } from '../errors/index.js'
import { applyChanges, parseReference, referenceString, topChainId, withDefaultTag, type ContainerConfig, type HistoryEntry, type ImageConfig } from '../image/index.js'
import { nowNs, formatRfc3339Nano } from '../fs/index.js'
import type { Store } from '../store/index.js'
import { orderContainerConfig } from './config.js'
import type { CommitOptions, CommitResult } from './types.js'

/** sha256 of an empty tar (two zero blocks): layer.DigestSHA256EmptyTar. */
export const EMPTY_LAYER_DIFF_ID = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef'

/**
 * The child config's bytes as dockerd writes them: image.Image.MarshalJSON
 * goes through a map, so the top-level keys come out sorted.
 */
function childConfigBytes(parent: ImageConfig, fields: { created: string; containerId: string; containerConfig: ContainerConfig; config: ContainerConfig; author: string | undefined; dockerVersion: string | undefined; diffIds: string[]; history: HistoryEntry[] }): Buffer {
  const out: Record<string, unknown> = {}
  out.created = fields.created
  out.container = fields.containerId
  out.container_config = fields.containerConfig
  if (fields.dockerVersion !== undefined && fields.dockerVersion !== '') out.docker_version = fields.dockerVersion
  if (fields.author !== undefined && fields.author !== '') out.author = fields.author
  out.config = fields.config
  out.architecture = parent.architecture ?? process.arch.replace('x64', 'amd64')
  if (parent.variant !== undefined && parent.variant !== '') out.variant = parent.variant
  out.os = 'linux'
  out.rootfs = { type: 'layers', diff_ids: fields.diffIds }
  out.history = fields.history
  if (parent['os.version'] !== undefined && parent['os.version'] !== '') out['os.version'] = parent['os.version']
  if (parent['os.features'] !== undefined && parent['os.features'].length > 0) out['os.features'] = parent['os.features']
  const sorted: Record<string, unknown> = {}
  for (const k of Object.keys(out).sort()) sorted[k] = out[k]
  return Buffer.from(JSON.stringify(sorted))
}

/** REPOSITORY[:TAG] as commit takes it (tag `latest` by default); INVALID_ARGUMENT with docker's words otherwise. */
function commitReference(s: string): string {
  const ref = parseReference(s)
  if (ref.digest !== undefined) throw new StrataError('INVALID_ARGUMENT', `invalid reference format: cannot commit to a digest reference "${s}"`)
  return referenceString(withDefaultTag(ref))
}

/** Changes up to this size (the container's mountSize) are applied on the committing thread. */
const IN_THREAD_COMMIT_BYTES = 4 << 20

/**
 * Commits a container's changes as a new image; returns its ID. The
 * container may be running (its files are read as they are; dockerd
 * would pause it first).
 */
export async function commitContainer(store: Store, ref: string, opts: CommitOptions = {}): Promise<CommitResult> {
  // The reference is checked before any work: a bad one must not leave an untagged image behind.
  const reference = opts.reference === undefined ? undefined : commitReference(opts.reference)
  const c = await store.containers.get(ref)
  const parent = await store.images.get(c.record.Image)
  const config = orderContainerConfig(applyChanges(opts.changes ?? [], c.record.Config))
  // Small changes (the usual commit) apply on this thread: a worker's start (a fresh V8 isolate
  // loading the apply bundle) cost more CPU than the whole apply of a 1-file change. Big ones
  // go to a worker, which keeps `strata serve`'s event loop free meanwhile.
  // (Only drivers that apply natively use workers; their diff size reads the upper dir alone.)
  const inThread = store.driver.parallelApply === true && (await store.layers.mountSize(c.id)) <= IN_THREAD_COMMIT_BYTES
  const diff = await store.layers.mountDiff(c.id)
  const { layer } = await store.layers.register(diff, topChainId(parent.config), { inThread })
  try {
    const addedLayer = layer.diffId !== EMPTY_LAYER_DIFF_ID
    const created = formatRfc3339Nano(nowNs(), 0)
    const entry: HistoryEntry = { created }
    if (opts.author !== undefined && opts.author !== '') entry.author = opts.author
    const createdBy = (c.record.Config.Cmd ?? []).join(' ')
    if (createdBy !== '') entry.created_by = createdBy
    if (opts.message !== undefined && opts.message !== '') entry.comment = opts.message
    if (!addedLayer) entry.empty_layer = true
    const raw = childConfigBytes(parent.config, {
      created,
      containerId: c.id,
      containerConfig: c.record.Config,
      config,
      author: opts.author,
      dockerVersion: opts.dockerVersion,
      diffIds: addedLayer ? [...parent.config.rootfs.diff_ids, layer.diffId] : [...parent.config.rootfs.diff_ids],
      history: [...(parent.config.history ?? []), entry],
    })
    const { id } = await store.images.create(raw, { parent: parent.id })
    if (reference !== undefined) {
      await store.references.addTag(reference, id, { force: true })
      await store.images.setLastUpdated(id)
    }
    return { imageId: id, diffId: layer.diffId, addedLayer }
  } finally {
    await layer.release()
  }
}

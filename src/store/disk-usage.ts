/**
 * `docker system df` and the counts of `docker info`, as dockerd 20.10's
 * SystemDiskUsage and SystemInfo compute them:
 * - Images: the image list without intermediate images, each with the
 *   containers using it and its SharedSize (the sizes of its layers that
 *   another listed image uses too);
 * - LayersSize: every layer those images use, each counted once;
 * - Containers: strata has no container records yet, so a container is a
 *   layerdb mount (named after its container, as dockerd names them), with
 *   the size of its read-write layer; none counts as running;
 * - Volumes and BuildCache: strata has neither, so they are empty.
 */
import { isStrataError } from '../errors/index.js'
import type { ChainID } from '../layer/index.js'
import type { Store } from './index.js'
import { summarize, type ImageSummary } from './image-list.js'
import { chainOf, containersFromMounts, snapshot, topChainOf, type ContainerUsageOptions } from './image-query.js'

/** A container as df shows it (a subset of docker's types.Container). */
export interface ContainerDiskUsage {
  /** The container ID (the layerdb mount's name). */
  Id: string
  /** The image whose top layer the container is on ("" when none is). */
  ImageID: string
  /** That image's first tag, else its short ID, else "". */
  Image: string
  /** Bytes in the container's read-write layer. */
  SizeRw: number
  State: 'created' | 'running'
  /** Whether the container's rootfs is mounted now (strata mount). */
  Mounted: boolean
}

/** docker's types.DiskUsage. */
export interface DiskUsage {
  LayersSize: number
  Images: ImageSummary[]
  Containers: ContainerDiskUsage[]
  Volumes: never[]
  BuildCache: never[]
}

export async function diskUsage(store: Store, opts: ContainerUsageOptions = {}): Promise<DiskUsage> {
  const using = opts.containersUsing ?? containersFromMounts(store)
  const snap = await snapshot(store)
  const images = summarize(snap, { all: false })

  // How many listed images use each layer.
  const layerRefs = new Map<ChainID, number>()
  for (const s of images) {
    for (const chain of chainOf(snap.images.get(s.Id)!)) layerRefs.set(chain, (layerRefs.get(chain) ?? 0) + 1)
  }
  let layersSize = 0
  for (const chain of layerRefs.keys()) layersSize += snap.layers.get(chain)?.size ?? 0
  for (const s of images) {
    s.Containers = (await using(s.Id)).length
    s.SharedSize = 0
    for (const chain of chainOf(snap.images.get(s.Id)!)) {
      if ((layerRefs.get(chain) ?? 0) > 1) s.SharedSize += snap.layers.get(chain)?.size ?? 0
    }
  }

  const containers: ContainerDiskUsage[] = []
  for (const m of await store.layers.listMounts()) {
    let size: number
    try {
      size = await store.layers.mountSize(m.name)
    } catch (err) {
      if (isStrataError(err, 'NOT_FOUND')) continue // removed meanwhile
      throw err
    }
    const image = m.parent === null ? undefined : images.find((s) => topChainOf(snap.images.get(s.Id)!) === m.parent)
    containers.push({
      Id: m.name,
      ImageID: image?.Id ?? '',
      Image: image === undefined ? '' : image.RepoTags[0] !== undefined && image.RepoTags[0] !== '<none>:<none>' ? image.RepoTags[0] : image.Id.slice(7, 19),
      SizeRw: size,
      State: 'created',
      Mounted: m.mountCount > 0,
    })
  }
  return { LayersSize: layersSize, Images: images, Containers: containers, Volumes: [], BuildCache: [] }
}

/** What `docker info` counts: every image (intermediate ones too) and every container. */
export interface StoreCounts {
  images: number
  containers: number
  containersRunning: number
}

export async function storeCounts(store: Store): Promise<StoreCounts> {
  return { images: (await store.images.list()).length, containers: (await store.layers.listMounts()).length, containersRunning: 0 }
}

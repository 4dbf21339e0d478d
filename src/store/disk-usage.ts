/**
 * `docker system df` and the counts of `docker info`, as dockerd 20.10's
 * SystemDiskUsage and SystemInfo compute them:
 * - Images: the image list without intermediate images, each with the
 *   containers using it and its SharedSize (the sizes of its layers that
 *   another listed image uses too);
 * - LayersSize: every layer those images use, each counted once;
 * - Containers: the container records (store.containers), each with the
 *   size of its read-write layer and its state;
 * - Volumes and BuildCache: strata has neither, so they are empty.
 */
import { stateName } from '../containerdb/index.js'
import { isStrataError } from '../errors/index.js'
import type { ChainID } from '../layer/index.js'
import type { Store } from './index.js'
import { summarize, type ImageSummary } from './image-list.js'
import { chainOf, containersOf, snapshot, type ContainerUsageOptions } from './image-query.js'

/** A container as df shows it (a subset of docker's types.Container). */
export interface ContainerDiskUsage {
  Id: string
  /** The image the container was created from. */
  ImageID: string
  /** That image's first tag, else its short ID, else "" (the image is gone). */
  Image: string
  /** Bytes in the container's read-write layer (0 when the layer is gone). */
  SizeRw: number
  /** docker's State.StateString(): created, running, exited, ... */
  State: string
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
  const using = opts.containersUsing ?? containersOf(store)
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
  for (const c of await store.containers.list()) {
    let size = 0
    let mounted = false
    try {
      size = await store.layers.mountSize(c.id)
      mounted = (await store.layers.getMount(c.id)).mountCount > 0
    } catch (err) {
      // A record whose layer is gone (a remove that died midway) still shows.
      if (!isStrataError(err, 'NOT_FOUND')) throw err
    }
    const image = images.find((s) => s.Id === c.record.Image)
    containers.push({
      Id: c.id,
      ImageID: c.record.Image,
      Image: image === undefined ? '' : image.RepoTags[0] !== undefined && image.RepoTags[0] !== '<none>:<none>' ? image.RepoTags[0] : image.Id.slice(7, 19),
      SizeRw: size,
      State: stateName(c.record.State, c.running),
      Mounted: mounted,
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
  const containers = await store.containers.list()
  return { images: (await store.images.list()).length, containers: containers.length, containersRunning: containers.filter((c) => c.running).length }
}

/**
 * Small real images for the image-verb tests: layer tars built in memory
 * with strata's tar writer (a few regular files each), registered in a real
 * store, and image configs of the shape dockerd writes (architecture, os,
 * config, created, history with empty_layer steps, rootfs), optionally with
 * a parent image and tags. Equal tar bytes register as one layer, which is
 * how tests make images share layers.
 */
import { Readable } from 'node:stream'
import { END_OF_ARCHIVE, encodeHeader, padding } from '../../src/archive/tar/index.js'
import type { Digest } from '../../src/digest/index.js'
import type { ContainerConfig, HistoryEntry, ImageID } from '../../src/image/index.js'
import type { ChainID } from '../../src/layer/index.js'
import type { Store } from '../../src/store/index.js'

/** A layer tar holding `files` (name → content), regular files 0644, mtime fixed. */
export function layerTar(files: Record<string, string | Buffer>): Buffer {
  const parts: Buffer[] = []
  for (const [name, content] of Object.entries(files)) {
    const body = Buffer.isBuffer(content) ? content : Buffer.from(content)
    parts.push(encodeHeader({ name, type: 'file', mode: 0o644, size: body.length, mtime: { sec: 1700000000, nsec: 0 } }), body, padding(body.length))
  }
  parts.push(END_OF_ARCHIVE)
  return Buffer.concat(parts)
}

export interface ImageSpec {
  /** Layer tars, base first (may be empty: an image without layers). */
  layers: Buffer[]
  /** RFC 3339 creation time. */
  created: string
  /** config.history; default: one step per layer ("ADD layer N"). */
  history?: HistoryEntry[]
  /** The image's `config`; default {Cmd: ["sh"], Env: [PATH]}. */
  config?: ContainerConfig
  parent?: ImageID
  tags?: string[]
  comment?: string
}

export interface MadeImage {
  id: ImageID
  /** chainIDs base first. */
  chain: ChainID[]
  diffIds: Digest[]
  configBytes: Buffer
}

/** Registers the layers (dropping the handles: the image keeps the top one), stores the config, tags it. */
export async function makeImage(store: Store, spec: ImageSpec): Promise<MadeImage> {
  const results = await store.layers.registerChain(spec.layers.map((tar) => ({ open: async () => Readable.from([tar]) })), null)
  const diffIds = results.map((r) => r.layer.diffId)
  const chain = results.map((r) => r.layer.chainId)
  const history = spec.history ?? spec.layers.map((_, i) => ({ created: spec.created, created_by: `/bin/sh -c #(nop) ADD layer ${i}` }))
  const doc: Record<string, unknown> = {
    architecture: 'amd64',
    config: spec.config ?? { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] },
    created: spec.created,
    history,
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: diffIds },
  }
  if (spec.comment !== undefined) doc.comment = spec.comment
  const configBytes = Buffer.from(JSON.stringify(doc))
  try {
    const { id } = await store.images.create(configBytes, spec.parent === undefined ? {} : { parent: spec.parent })
    for (const tag of spec.tags ?? []) await store.references.addTag(tag, id)
    return { id, chain, diffIds, configBytes }
  } finally {
    for (const r of results) await r.layer.release()
  }
}

/** `n` bytes of one letter: file contents whose sizes tests can add up. */
export function bytes(n: number, fill = 'x'): string {
  return fill.repeat(n)
}

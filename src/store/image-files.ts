/**
 * Reading one file of an image or layer without unpacking anything: the
 * layer's tar is streamed (rebuilt from tar-split as `layer export` and
 * `save` write it) and only the wanted entry's bytes are kept; nothing is
 * written to disk and nothing is mounted.
 *
 * readImageFile looks from the top layer down, as the merged view does:
 * the first layer that has the path answers; a whiteout (`.wh.NAME`) of it
 * or an opaque marker (`.wh..wh..opq`) in a directory above it hides the
 * lower layers' copy. A hard link is followed to its target in the same
 * layer; a symlink is returned as what it is (its target), not followed.
 */
import { posix } from 'node:path'
import { readTar } from '../archive/index.js'
import { chainIds } from '../digest/index.js'
import { StrataError } from '../errors/index.js'
import type { ChainID } from '../layer/index.js'
import type { Store } from './index.js'

export interface LayerFile {
  /** The entry's path in the layer, without a leading "./" or "/". */
  path: string
  /** 'file' (a hard link reads as its target), 'symlink', 'dir', 'other' (devices, fifos). */
  kind: 'file' | 'symlink' | 'dir' | 'other'
  mode: number
  /** A regular file's bytes (empty for the other kinds). */
  content: Buffer
  /** A symlink's target. */
  linkTarget?: string
}

/** What one layer says about a path: there, hidden (whited out), or nothing. */
type Lookup = { found: LayerFile } | { hidden: true } | undefined

function clean(path: string): string {
  const p = posix.normalize(`/${path}`).slice(1)
  return p.endsWith('/') ? p.slice(0, -1) : p
}

async function lookupInLayer(store: Store, chainId: ChainID, wanted: string): Promise<Lookup> {
  const exported = await store.layers.export(chainId)
  // The verification settles after the stream; a lookup that stops early does not wait for it.
  exported.verified.catch(() => {})
  const dirs = wanted.split('/').slice(0, -1).map((_, i, parts) => parts.slice(0, i + 1).join('/'))
  let hidden = false
  let result: LayerFile | undefined
  let linkTo: string | undefined
  try {
    for await (const entry of readTar(exported.stream)) {
      const name = clean(entry.header.name)
      const base = posix.basename(name)
      const dir = posix.dirname(name) === '.' ? '' : posix.dirname(name)
      if (base === `.wh.${posix.basename(wanted)}` && dir === (posix.dirname(wanted) === '.' ? '' : posix.dirname(wanted))) hidden = true
      else if (base === '.wh..wh..opq' && dirs.includes(dir)) hidden = true
      else if (base.startsWith('.wh.') && dirs.includes(posix.join(dir, base.slice(4)))) hidden = true
      const wantedHere = name === wanted || (linkTo !== undefined && name === linkTo)
      if (!wantedHere) continue
      const t = entry.header.type
      if (t === 'hardlink' && name === wanted) {
        // A hard link names an earlier entry of the same layer.
        linkTo = clean(entry.header.linkname)
        if (result?.path === linkTo) return { found: { ...result, path: wanted } }
        continue
      }
      const chunks: Buffer[] = []
      for await (const c of entry.body()) chunks.push(c)
      const kind = t === 'file' || t === 'symlink' || t === 'dir' ? t : 'other'
      const file: LayerFile = { path: wanted, kind, mode: entry.header.mode, content: Buffer.concat(chunks), ...(kind === 'symlink' ? { linkTarget: entry.header.linkname } : {}) }
      if (name === wanted) return { found: file }
      result = { ...file, path: name }
      if (linkTo === name) return { found: { ...file, path: wanted } }
    }
  } finally {
    exported.stream.destroy()
  }
  return hidden ? { hidden: true } : undefined
}

/** A path in one layer (by chainID) as that layer's tar holds it; undefined when the layer does not have it. */
export async function readLayerFile(store: Store, chainId: ChainID, path: string): Promise<LayerFile | undefined> {
  const r = await lookupInLayer(store, chainId, clean(path))
  return r !== undefined && 'found' in r ? r.found : undefined
}

/**
 * A path in an image (reference or ID) as a container of it would see it
 * at start, read from the top layer down; NOT_FOUND naming the path and
 * the image when no layer has it (or it was deleted).
 */
export async function readImageFile(store: Store, image: string, path: string): Promise<LayerFile> {
  const id = await store.findImage(image)
  const chains = chainIds((await store.images.get(id)).config.rootfs.diff_ids)
  const wanted = clean(path)
  for (const chain of [...chains].reverse()) {
    const r = await lookupInLayer(store, chain, wanted)
    if (r === undefined) continue
    if ('found' in r) return r.found
    break
  }
  throw new StrataError('NOT_FOUND', `"/${wanted}" is not in image ${image}`, { details: { image: id, path: wanted } })
}

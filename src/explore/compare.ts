/**
 * Two images side by side: the layers they share (the same chainIDs from
 * the bottom up: the same bytes, stored once) and how the files of their
 * final views differ. Files are compared by kind, size, content CRC-64,
 * mode, owner and link target; directories by their attributes only (their
 * content is compared file by file).
 */
import type { ImageTree, LayerView, TreeNode } from './image-tree.js'
import type { CompareChange, ImageComparison, LayerEntry } from './types.js'

export interface CompareSide {
  id: string
  tree: ImageTree
  layers: Array<{ chainId: ImageComparison['sharedLayers'][number]['chainId']; diffId: ImageComparison['sharedLayers'][number]['diffId']; size: number }>
}

function differs(a: LayerEntry, b: LayerEntry): boolean {
  if (a.kind !== b.kind || a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid || a.link !== b.link || a.device !== b.device) return true
  if (a.kind !== 'file') return false
  return a.size !== b.size || a.crc !== b.crc
}

export function compareImages(a: CompareSide, b: CompareSide, limit = 500): ImageComparison {
  let shared = 0
  while (shared < a.layers.length && shared < b.layers.length && a.layers[shared]!.chainId === b.layers[shared]!.chainId) shared++
  const out: ImageComparison = {
    a: a.id,
    b: b.id,
    sharedLayers: a.layers.slice(0, shared).map((l, index) => ({ index, chainId: l.chainId, diffId: l.diffId, size: l.size })),
    onlyA: a.layers.length - shared,
    onlyB: b.layers.length - shared,
    counts: { onlyA: 0, onlyB: 0, changed: 0 },
    differences: [],
    incomplete: a.tree.incomplete || b.tree.incomplete,
  }
  if (a.tree.layerCount === 0 && b.tree.layerCount === 0) return out
  const viewA = a.tree.layerCount > 0 ? a.tree.view(a.tree.layerCount - 1) : undefined
  const viewB = b.tree.layerCount > 0 ? b.tree.view(b.tree.layerCount - 1) : undefined
  const visible = (tree: ImageTree, view: LayerView | undefined, node: TreeNode | undefined): LayerEntry | undefined =>
    view !== undefined && node !== undefined && view.atK[node.id] !== -1 ? tree.shownEntry(view, node) : undefined

  const diffs = out.differences
  const note = (path: string, change: CompareChange, ea: LayerEntry | undefined, eb: LayerEntry | undefined): void => {
    out.counts[change === 'only-a' ? 'onlyA' : change === 'only-b' ? 'onlyB' : 'changed']++
    diffs.push({ path, change, kind: (eb ?? ea)!.kind, sizeA: ea?.size ?? 0, sizeB: eb?.size ?? 0 })
  }
  const walk = (na: TreeNode | undefined, nb: TreeNode | undefined, path: string): void => {
    const names = new Set<string>()
    for (const k of na?.children?.keys() ?? []) names.add(k)
    for (const k of nb?.children?.keys() ?? []) names.add(k)
    for (const name of names) {
      const ca = na?.children?.get(name)
      const cb = nb?.children?.get(name)
      const ea = visible(a.tree, viewA, ca)
      const eb = visible(b.tree, viewB, cb)
      const childPath = path === '/' ? `/${name}` : `${path}/${name}`
      if (ea === undefined && eb === undefined) continue
      if (ea === undefined) note(childPath, 'only-b', ea, eb)
      else if (eb === undefined) note(childPath, 'only-a', ea, eb)
      else if (differs(ea, eb)) note(childPath, 'changed', ea, eb)
      if ((ea?.kind === 'dir' || ea === undefined) && (eb?.kind === 'dir' || eb === undefined)) walk(ea === undefined ? undefined : ca, eb === undefined ? undefined : cb, childPath)
      else if (ea?.kind === 'dir') walk(ca, undefined, childPath)
      else if (eb?.kind === 'dir') walk(undefined, cb, childPath)
    }
  }
  walk(a.tree.root, b.tree.root, '/')
  diffs.sort((x, y) => Math.max(y.sizeA, y.sizeB) - Math.max(x.sizeA, x.sizeB) || (x.path < y.path ? -1 : 1))
  out.differences = diffs.slice(0, limit)
  return out
}

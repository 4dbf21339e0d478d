/**
 * Image efficiency as wagoodman/dive computes it (dive/filetree/efficiency.go
 * and the analysis in dive/image/docker), so that the numbers match what
 * people know from dive:
 *
 * - Each layer is a tree of its tar members (parents created as needed;
 *   `.wh..wh..opq` markers are never added). Only its leaves count: members
 *   with no member below them in the same layer.
 * - Every leaf adds to its path's record: its tar size, or, for a whiteout
 *   `.wh.NAME`, the total size of what NAME held in the layers below when
 *   NAME was a directory there (0 when it was a file: the file's own copy
 *   already counts once).
 * - "Below" is dive's stacked tree: layers applied in order where only
 *   whiteouts remove anything (opaque markers are ignored; a file over a
 *   directory keeps the directory's children), and a parent nobody listed
 *   is not a directory (size 0).
 * - A path met twice or more is an inefficiency; wasted bytes are the sum
 *   of those paths' cumulative sizes (every copy, the surviving one too).
 * - score = Σ smallest size seen per path / Σ cumulative size per path
 *   (1 when there are no bytes at all).
 * - user size: the content bytes of every layer but the first.
 *
 * One difference on purpose: dive stops visiting a layer at a whiteout of a
 * path absent below (an error in its tree walk) and so skips the rest of
 * that layer; here such a whiteout counts 0 and the layer goes on.
 *
 * Written here rather than run: dive is a Go program with a terminal UI,
 * not a library, and is not packaged for Debian.
 */
import type { ImageTree, TreeNode, Version } from './image-tree.js'
import type { Efficiency, Inefficiency } from './types.js'

interface PathRecord {
  node: TreeNode
  count: number
  cumulative: number
  min: number
}

/** dive's efficiency of `tree`, the `limit` largest inefficiencies listed. */
export function diveEfficiency(tree: ImageTree, limit = 100): Efficiency {
  const records = new Map<number, PathRecord>()
  const add = (node: TreeNode, size: number): void => {
    let r = records.get(node.id)
    if (r === undefined) {
      r = { node, count: 0, cumulative: 0, min: -1 }
      records.set(node.id, r)
    }
    r.count++
    r.cumulative += size
    if (r.min < 0 || size < r.min) r.min = size
  }
  for (let layer = 0; layer < tree.layerCount; layer++) {
    if (tree.indexes[layer] === null) continue
    visitLeaves(tree.root, layer, (node, version) => {
      if (version === undefined) add(node, 0) // a bare parent: dive's FileInfo{}
      else if (version.entry !== null) add(node, version.entry.size)
      else add(node, layer === 0 ? 0 : whiteoutSize(node, layer - 1))
    })
  }
  let minimum = 0
  let discovered = 0
  const inefficient: Inefficiency[] = []
  let wasted = 0
  for (const r of records.values()) {
    minimum += r.min
    discovered += r.cumulative
    if (r.count >= 2) {
      wasted += r.cumulative
      inefficient.push({ path: r.node.path, count: r.count, cumulativeSize: r.cumulative })
    }
  }
  inefficient.sort((a, b) => b.cumulativeSize - a.cumulativeSize || (a.path < b.path ? -1 : 1))
  let sizeBytes = 0
  let userSizeBytes = 0
  tree.indexes.forEach((index, i) => {
    const size = index?.contentSize ?? 0
    sizeBytes += size
    if (i > 0) userSizeBytes += size
  })
  return {
    score: discovered === 0 ? 1 : minimum / discovered,
    wastedBytes: wasted,
    userSizeBytes,
    sizeBytes,
    wastedUserPercent: userSizeBytes === 0 ? 0 : wasted / userSizeBytes,
    inefficiencies: inefficient.slice(0, limit),
    inefficiencyCount: inefficient.length,
  }
}

/**
 * Calls `fn` for every leaf of `layer`'s tree: nodes the layer touched
 * (its members, their parents, and the directories its opaque markers
 * name, which dive creates on the way to the marker it then drops) with
 * nothing of the layer below them.
 */
function visitLeaves(node: TreeNode, layer: number, fn: (node: TreeNode, version: Version | undefined) => void): void {
  let childTouched = false
  if (node.children !== null) {
    for (const child of node.children.values()) {
      if (!child.isTouchedAt(layer)) continue
      childTouched = true
      visitLeaves(child, layer, fn)
    }
  }
  if (!childTouched && node.parent !== null) fn(node, node.versionAt(layer))
}

/**
 * What a whiteout of `node` hides in dive's stacked tree of layers 0..upTo:
 * the sizes of the directory and everything below it, or 0 when the path
 * was not a directory (or not there).
 */
function whiteoutSize(node: TreeNode, upTo: number): number {
  const removedAbove = inheritedRemoval(node.parent, upTo)
  const state = diveState(node, upTo, removedAbove)
  if (state === undefined || !state.isDir) return 0
  return state.size + sizeBelow(node, upTo, Math.max(removedAbove, state.removedAt))
}

/** The newest whiteout at or below `upTo` of `node` or any parent: what dive's Stack removed last. */
function inheritedRemoval(node: TreeNode | null, upTo: number): number {
  let removed = -1
  for (let n = node; n !== null; n = n.parent) removed = Math.max(removed, lastWhiteout(n, upTo))
  return removed
}

function lastWhiteout(node: TreeNode, upTo: number): number {
  let last = -1
  for (const v of node.versions) {
    if (v.layer > upTo) break
    if (v.entry === null) last = v.layer
  }
  return last
}

/** A node in dive's stacked tree: its payload (newest member since the last removal), or undefined when absent. */
function diveState(node: TreeNode, upTo: number, removedAbove: number): { isDir: boolean; size: number; removedAt: number } | undefined {
  const removedAt = Math.max(removedAbove, lastWhiteout(node, upTo))
  for (let i = node.versions.length - 1; i >= 0; i--) {
    const v = node.versions[i]!
    if (v.layer > upTo) continue
    if (v.layer <= removedAt) break
    if (v.entry !== null) return { isDir: v.entry.kind === 'dir', size: v.entry.size, removedAt }
  }
  // No member since: the node exists (as a bare parent, not a directory) while something below it does.
  return existsBelow(node, upTo, removedAt) ? { isDir: false, size: 0, removedAt } : undefined
}

function existsBelow(node: TreeNode, upTo: number, removedAbove: number): boolean {
  if (node.children === null) return false
  for (const child of node.children.values()) if (diveState(child, upTo, removedAbove) !== undefined) return true
  return false
}

function sizeBelow(node: TreeNode, upTo: number, removedAbove: number): number {
  let total = 0
  if (node.children === null) return 0
  for (const child of node.children.values()) {
    const state = diveState(child, upTo, removedAbove)
    if (state === undefined) continue
    total += state.size + sizeBelow(child, upTo, Math.max(removedAbove, state.removedAt))
  }
  return total
}

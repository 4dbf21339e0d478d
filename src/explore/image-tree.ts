/**
 * The image tree (types.ts "Words"): every path any layer names, with the
 * version each layer gave it, built once per image; and the view of the
 * image at any layer k, computed from it in one pass over the nodes.
 *
 * Visibility follows overlayfs (and dockerd's apply): a path shows the
 * newest version at or below k, unless that version is a whiteout, or a
 * parent put a barrier above it: a whiteout of the parent, an opaque
 * marker, or the parent replaced by a non-directory, at a layer newer than
 * the version. A directory no layer lists but that holds visible paths is
 * shown too ("implicit"), as a tar may omit parents.
 */
import type { LayerEntry, LayerIndex, LayerProblem, Mark, TreeEntry } from './types.js'

/** One layer's word on a path: an entry, or a whiteout (entry null). */
export interface Version {
  layer: number
  entry: LayerEntry | null
}

export class TreeNode {
  readonly id: number
  readonly name: string
  readonly parent: TreeNode | null
  children: Map<string, TreeNode> | null = null
  /** Ascending by layer, one per layer at most. */
  readonly versions: Version[] = []
  /** Layers that made this directory opaque, ascending. */
  opaqueAt: number[] | null = null
  /** Layers with a version of this node or of a path below it, ascending, no repeats. */
  readonly touched: number[] = []

  constructor(id: number, name: string, parent: TreeNode | null) {
    this.id = id
    this.name = name
    this.parent = parent
  }

  get path(): string {
    if (this.parent === null) return '/'
    const parts: string[] = []
    for (let n: TreeNode | null = this; n !== null && n.parent !== null; n = n.parent) parts.push(n.name)
    return `/${parts.reverse().join('/')}`
  }

  /** The version of exactly layer `k`, if this node has one. */
  versionAt(k: number): Version | undefined {
    for (let i = this.versions.length - 1; i >= 0; i--) {
      const v = this.versions[i]!
      if (v.layer === k) return v
      if (v.layer < k) return undefined
    }
    return undefined
  }

  /** Index of the newest version at or below `k`, -1 when none. */
  newestAtOrBelow(k: number): number {
    for (let i = this.versions.length - 1; i >= 0; i--) if (this.versions[i]!.layer <= k) return i
    return -1
  }

  /** The newest layer ≤ k at which this node hides what lower layers put below it; -1 when none. */
  barrierAt(k: number): number {
    let barrier = -1
    for (const v of this.versions) {
      if (v.layer > k) break
      if (v.entry === null || v.entry.kind !== 'dir') barrier = v.layer
    }
    if (this.opaqueAt !== null) for (const l of this.opaqueAt) if (l <= k && l > barrier) barrier = l
    return barrier
  }

  isTouchedAt(k: number): boolean {
    const t = this.touched
    for (let i = t.length - 1; i >= 0; i--) {
      if (t[i] === k) return true
      if (t[i]! < k) return false
    }
    return false
  }
}

/** What the view at a layer knows about every node (by node id). -1: not visible. */
export interface LayerView {
  layer: number
  /** Version index shown at layer k; -2 implicit directory; -1 not visible. */
  readonly atK: Int32Array
  /** Same at layer k-1. */
  readonly atPrev: Int32Array
  readonly mark: Uint8Array
  /** Directory totals (visible files below; for a removed directory, what it held). */
  readonly size: Float64Array
  readonly changeCount: Int32Array
  readonly childCount: Int32Array
  /** Largest listed file at or below the node. */
  readonly maxSize: Float64Array
  counts: { added: number; modified: number; removed: number; wastedBytes: number }
}

const MARKS: Mark[] = ['unchanged', 'added', 'modified', 'removed']
const NONE = 0
const ADDED = 1
const MODIFIED = 2
const REMOVED = 3
const UNCHANGED = 4 // listed, not changed (MARKS index 0)

const IMPLICIT = -2
const HIDDEN = -1

/** A directory nobody listed: root-owned 0755, as dockerd's apply would create it. */
function implicitEntry(path: string): LayerEntry {
  return { path, kind: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0, link: '', device: '', xattrs: [], crc: '' }
}

function sameDirAttributes(a: LayerEntry, b: LayerEntry): boolean {
  return a.kind === b.kind && a.mode === b.mode && a.uid === b.uid && a.gid === b.gid && a.xattrs.join('\0') === b.xattrs.join('\0')
}

export class ImageTree {
  readonly root: TreeNode
  readonly layerCount: number
  /** Per layer: why it could not be read (its files count as absent), or undefined. */
  readonly problems: Array<LayerProblem | undefined>
  /** Per layer: its index (null when it could not be read). */
  readonly indexes: Array<LayerIndex | null>
  readonly nodes: TreeNode[] = []
  readonly #views = new Map<number, LayerView>()
  /** Nodes by path while the tree is built (tar order repeats parents: one lookup instead of a walk). */
  readonly #byPath = new Map<string, TreeNode>()

  constructor(indexes: Array<LayerIndex | null>, problems: Array<LayerProblem | undefined>) {
    this.layerCount = indexes.length
    this.indexes = indexes
    this.problems = problems
    this.root = this.#newNode('', null)
    this.#byPath.set('/', this.root)
    indexes.forEach((index, layer) => {
      if (index === null) return
      for (const e of index.entries) this.#addVersion(e.path, layer, e)
      for (const p of index.whiteouts) this.#addVersion(p, layer, null)
      for (const p of index.opaque) {
        const node = this.#nodeFor(p)
        ;(node.opaqueAt ??= []).push(layer)
        this.#touch(node, layer)
      }
    })
    // Only needed while building: lookups later walk from the root.
    this.#byPath.clear()
  }

  get incomplete(): boolean {
    return this.problems.some((p) => p !== undefined)
  }

  /** Whether a layer at or below `k` could not be read. */
  incompleteAt(k: number): boolean {
    return this.problems.some((p, i) => p !== undefined && i <= k)
  }

  #newNode(name: string, parent: TreeNode | null): TreeNode {
    const node = new TreeNode(this.nodes.length, name, parent)
    this.nodes.push(node)
    return node
  }

  #nodeFor(path: string): TreeNode {
    const known = this.#byPath.get(path)
    if (known !== undefined) return known
    const slash = path.lastIndexOf('/')
    const parent = this.#nodeFor(slash === 0 ? '/' : path.slice(0, slash))
    const name = path.slice(slash + 1)
    let node = parent.children?.get(name)
    if (node === undefined) {
      node = this.#newNode(name, parent)
      ;(parent.children ??= new Map()).set(name, node)
    }
    this.#byPath.set(path, node)
    return node
  }

  #touch(node: TreeNode, layer: number): void {
    for (let n: TreeNode | null = node; n !== null; n = n.parent) {
      if (n.touched[n.touched.length - 1] === layer) break
      n.touched.push(layer)
    }
  }

  #addVersion(path: string, layer: number, entry: LayerEntry | null): void {
    const node = this.#nodeFor(path)
    const last = node.versions[node.versions.length - 1]
    // One version per layer: an entry after a whiteout of the same name in one tar recreates the path.
    if (last !== undefined && last.layer === layer) {
      if (entry !== null) last.entry = entry
    } else {
      node.versions.push({ layer, entry })
    }
    this.#touch(node, layer)
  }

  /** The node at `path`, undefined when no layer names it. */
  find(path: string): TreeNode | undefined {
    let node: TreeNode | undefined = this.root
    if (path === '/' || path === '') return node
    for (const name of path.replace(/^\/+/, '').split('/')) {
      if (name === '') continue
      node = node.children?.get(name)
      if (node === undefined) return undefined
    }
    return node
  }

  /** The view at layer `k`, computed on first use and kept for the last few layers asked. */
  view(k: number): LayerView {
    if (!Number.isInteger(k) || k < 0 || k >= this.layerCount) throw new RangeError(`Layer ${k} is out of range 0..${this.layerCount - 1}`)
    const cached = this.#views.get(k)
    if (cached !== undefined) {
      this.#views.delete(k)
      this.#views.set(k, cached)
      return cached
    }
    const view = computeView(this, k)
    this.#views.set(k, view)
    if (this.#views.size > 8) this.#views.delete(this.#views.keys().next().value!)
    return view
  }

  /** The entry a view shows for a listed node (its previous version when removed). */
  shownEntry(view: LayerView, node: TreeNode): LayerEntry {
    const idx = view.atK[node.id]! >= 0 || view.atK[node.id] === IMPLICIT ? view.atK[node.id]! : view.atPrev[node.id]!
    return idx >= 0 ? node.versions[idx]!.entry! : implicitEntry(node.path)
  }

  isUnchanged(view: LayerView, node: TreeNode): boolean {
    return view.mark[node.id] === UNCHANGED
  }

  isListed(view: LayerView, node: TreeNode): boolean {
    return view.mark[node.id] !== NONE
  }

  treeEntry(view: LayerView, node: TreeNode): TreeEntry {
    const e = this.shownEntry(view, node)
    const code = view.mark[node.id]!
    const idx = view.atK[node.id]! !== HIDDEN ? view.atK[node.id]! : view.atPrev[node.id]!
    return {
      name: node.parent === null ? '/' : node.name,
      path: node.path,
      kind: e.kind,
      mark: MARKS[code === UNCHANGED ? 0 : code]!,
      mode: e.mode,
      uid: e.uid,
      gid: e.gid,
      size: e.kind === 'dir' ? view.size[node.id]! : e.size,
      mtime: e.mtime,
      link: e.link,
      device: e.device,
      xattrs: e.xattrs,
      layer: idx >= 0 ? node.versions[idx]!.layer : -1,
      childCount: view.childCount[node.id]!,
      changeCount: view.changeCount[node.id]!,
      opaque: node.opaqueAt?.includes(view.layer) === true,
      implicit: idx === IMPLICIT,
    }
  }
}

/**
 * One depth-first pass: visibility at k and k-1 (each with the barrier its
 * parents put up), marks, then directory totals on the way back up.
 */
function computeView(tree: ImageTree, k: number): LayerView {
  const n = tree.nodes.length
  const view: LayerView = {
    layer: k,
    atK: new Int32Array(n).fill(HIDDEN),
    atPrev: new Int32Array(n).fill(HIDDEN),
    mark: new Uint8Array(n),
    size: new Float64Array(n),
    changeCount: new Int32Array(n),
    childCount: new Int32Array(n),
    maxSize: new Float64Array(n),
    counts: { added: 0, modified: 0, removed: 0, wastedBytes: 0 },
  }
  new ViewPass(view, k).visit(tree.root, -1, -1)
  return view
}

/** What a directory's children add up to, once they are visited. */
interface ChildTotals {
  anyChildK: boolean
  anyChildPrev: boolean
  sizeVisible: number
  sizeRemoved: number
  changes: number
  children: number
  maxSize: number
}

const NO_CHILDREN: ChildTotals = Object.freeze({ anyChildK: false, anyChildPrev: false, sizeVisible: 0, sizeRemoved: 0, changes: 0, children: 0, maxSize: 0 })

/** The pass computeView makes, one node at a time: visibility, children, mark, sizes, counts. */
class ViewPass {
  readonly #view: LayerView
  readonly #k: number

  constructor(view: LayerView, k: number) {
    this.#view = view
    this.#k = k
  }

  visit(node: TreeNode, barrierK: number, barrierPrev: number): void {
    const view = this.#view
    const id = node.id
    let { atK, atPrev } = this.#ownVisibility(node, barrierK, barrierPrev)
    const totals = this.#visitChildren(node, barrierK, barrierPrev)
    // A directory no layer shows at this point still exists while it holds visible paths.
    if (atK === HIDDEN && totals.anyChildK) atK = IMPLICIT
    if (atPrev === HIDDEN && totals.anyChildPrev) atPrev = IMPLICIT
    view.atK[id] = atK
    view.atPrev[id] = atPrev
    const mark = this.#markOf(node, atK, atPrev)
    view.mark[id] = mark
    if (mark === NONE) return
    this.#recordSize(node, mark, atK !== HIDDEN ? atK : atPrev, totals)
    if (node.parent !== null) this.#count(node, mark, atPrev)
  }

  /** The version of `node` visible at k and at k-1 by itself (before its children can make it implicit). */
  #ownVisibility(node: TreeNode, barrierK: number, barrierPrev: number): { atK: number; atPrev: number } {
    const k = this.#k
    if (node.parent === null) {
      // The root always exists; a `./` member only gives it attributes.
      const iK = node.newestAtOrBelow(k)
      const iPrev = k > 0 ? node.newestAtOrBelow(k - 1) : -1
      return { atK: iK >= 0 ? iK : IMPLICIT, atPrev: k === 0 ? HIDDEN : iPrev >= 0 ? iPrev : IMPLICIT }
    }
    return { atK: own(node, k, barrierK), atPrev: own(node, k - 1, barrierPrev) }
  }

  /** Visits the children (under the barriers this directory adds) and adds up what they show. */
  #visitChildren(node: TreeNode, barrierK: number, barrierPrev: number): ChildTotals {
    if (node.children === null) return NO_CHILDREN
    const view = this.#view
    const k = this.#k
    const t: ChildTotals = { ...NO_CHILDREN }
    const bK = Math.max(barrierK, node.barrierAt(k))
    const bPrev = k > 0 ? Math.max(barrierPrev, node.barrierAt(k - 1)) : -1
    for (const child of node.children.values()) {
      this.visit(child, bK, bPrev)
      const c = child.id
      if (view.atK[c] !== HIDDEN) t.anyChildK = true
      if (view.atPrev[c] !== HIDDEN) t.anyChildPrev = true
      const m = view.mark[c]!
      if (m === NONE) continue
      t.children++
      t.changes += view.changeCount[c]! + (m === UNCHANGED ? 0 : 1)
      if (m === REMOVED) t.sizeRemoved += view.size[c]!
      else t.sizeVisible += view.size[c]!
      if (view.maxSize[c]! > t.maxSize) t.maxSize = view.maxSize[c]!
    }
    return t
  }

  /** A file's own size; a directory's totals (a removed directory counts what it held, a visible one what is still there). */
  #recordSize(node: TreeNode, mark: number, shown: number, t: ChildTotals): void {
    const view = this.#view
    const id = node.id
    const entry = shown >= 0 ? node.versions[shown]!.entry! : null
    if (entry !== null && entry.kind !== 'dir') {
      view.size[id] = entry.size
      view.maxSize[id] = entry.kind === 'file' ? entry.size : 0
    } else {
      view.size[id] = mark === REMOVED ? t.sizeRemoved + t.sizeVisible : t.sizeVisible
      view.maxSize[id] = t.maxSize
      view.childCount[id] = t.children
      view.changeCount[id] = t.changes
    }
  }

  /** The layer's counts: added, modified, removed, and the bytes a change or removal wastes. */
  #count(node: TreeNode, mark: number, atPrev: number): void {
    const counts = this.#view.counts
    if (mark === ADDED) counts.added++
    else if (mark === MODIFIED) counts.modified++
    else if (mark === REMOVED) counts.removed++
    if ((mark === MODIFIED || mark === REMOVED) && atPrev >= 0) {
      const before = node.versions[atPrev]!.entry!
      if (before.kind === 'file') counts.wastedBytes += before.size
    }
  }

  /** How `node` changed at layer k: added, removed, modified, unchanged, or not there at all (NONE). */
  #markOf(node: TreeNode, atK: number, atPrev: number): number {
    const k = this.#k
    const visK = atK !== HIDDEN
    const visPrev = atPrev !== HIDDEN
    if (!visK && !visPrev) return NONE
    if (visK && !visPrev) return ADDED
    if (!visK) return REMOVED
    if (atK < 0 || node.versions[atK]!.layer !== k) return UNCHANGED
    const now = node.versions[atK]!.entry!
    if (now.kind !== 'dir') return MODIFIED
    if (node.opaqueAt?.includes(k) === true) return MODIFIED
    const before = atPrev >= 0 ? node.versions[atPrev]!.entry! : implicitEntry(now.path)
    return sameDirAttributes(before, now) ? UNCHANGED : MODIFIED
  }
}

/** The version of `node` visible at `layer` under `barrier` (an opaque dir or whiteout above hides older ones). */
function own(node: TreeNode, layer: number, barrier: number): number {
  if (layer < 0) return HIDDEN
  const i = node.newestAtOrBelow(layer)
  if (i < 0) return HIDDEN
  const v = node.versions[i]!
  return v.entry === null || v.layer < barrier ? HIDDEN : i
}

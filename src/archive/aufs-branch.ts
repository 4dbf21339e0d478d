/**
 * Reading an aufs branch (a layer's `aufs/diff/<id>` directory) as a layer:
 * what it changes over the branches below it, and its layer tar. Written
 * by hand because no library knows aufs's on-disk conventions, and because
 * a branch here may hold two of them at once:
 *
 *  - aufs's own, as dockerd's ApplyDiff and the aufs module write them:
 *    `.wh.<name>` (an empty file, often a hardlink of `.wh..wh.aufs`)
 *    deletes `<name>` from the branches below, `.wh..wh..opq` in a
 *    directory hides everything below it, and `.wh..wh.aufs`,
 *    `.wh..wh.plnk/`, `.wh..wh.orph/` at the top are aufs's bookkeeping;
 *    deeper `.wh..wh.<name>.<4 hex>` names are directories aufs is
 *    removing (renamed, then deleted asynchronously);
 *  - fuse-overlayfs's, in a read-write branch it was the upper dir of:
 *    a 0/0 character device `<name>` deletes `<name>`, a directory with
 *    trusted.overlay.opaque=y is opaque (fuse-overlayfs also drops an
 *    empty `.wh..wh..opq` and a 0/0 device `.wh..opq` into it), and
 *    user.fuseoverlayfs.* attributes are its own.
 *
 * Both are read the same way: one classification (classify) drives the
 * changes (changesAufs) and the tar (exportAufsBranch), which always speaks
 * aufs/OCI: `.wh.<name>` files and `.wh..wh..opq` markers.
 *
 * Where we differ from moby on purpose:
 * - moby's aufs Changes looks a path up in each lower branch with a plain
 *   stat and no whiteouts: a file deleted in a middle branch and present
 *   further down reads as modified. Here lower branches are read as aufs
 *   reads them (whiteouts, opaque directories and non-directory parents
 *   hide what is below), and nothing follows a symlink.
 * - moby's aufs Changes reports `.wh..wh..opq` as "D <dir>/.wh..opq"; here
 *   an opaque directory is "D <dir>" (then its content A), as moby's overlay
 *   changes report it, so both drivers say the same about the same change.
 * - moby's Diff keeps aufs's temporary `.wh..wh.<name>.<hex>` dirs found
 *   below the top, and tars whiteouts hardlinked to `.wh..wh.aufs` as
 *   hardlinks of the first whiteout it met; here those temporaries are
 *   left out and every whiteout is its own empty file.
 * - A whiteout whose victim is "", "." or ".." is UNSAFE_PATH, naming it.
 */
import type { BigIntStats } from 'node:fs'
import type { Readable } from 'node:stream'
import { StrataError } from '../errors/index.js'
import {
  isOverlayOpaque,
  isOverlayWhiteout,
  lstatOrUndefined,
  sameFsTime,
  sortChanges,
  sortedNames,
  timespecOf,
  type Change,
  type ChangeKind,
} from './changes.js'
import { Appender, FLUSH_AT, splitName, toStream, type ExportOptions } from './export.js'
import { WHITEOUT_META_PREFIX, WHITEOUT_OPAQUE, WHITEOUT_PREFIX } from './whiteout.js'

/** fuse-overlayfs's marker of an opaque directory besides the xattr: a 0/0 device whose name, read as aufs, is `.wh..wh..opq`. */
const FUSE_OPAQUE_DEVICE = '.wh..opq'

/** What one directory entry of a branch means. */
export type BranchEntry =
  | { kind: 'meta' } // aufs bookkeeping or a directory aufs is removing: not content
  | { kind: 'opaque' } // marks its directory opaque
  | { kind: 'whiteout'; victim: string; form: 'aufs' | 'overlay' } // deletes `victim` (a name in the same directory)
  | { kind: 'entry' } // a file, directory, link, device... of the layer

/**
 * What the entry `name` (lstat `st`) of a branch directory is. `.wh..wh.`
 * names are aufs's at any depth: its bookkeeping at the top, directories
 * it is removing below. UNSAFE_PATH for an aufs whiteout naming "", "."
 * or ".." (`path` names it in the error).
 */
export function classifyBranchEntry(name: string, st: BigIntStats, path: string): BranchEntry {
  if (isOverlayWhiteout(st)) {
    if (name === FUSE_OPAQUE_DEVICE) return { kind: 'opaque' }
    return { kind: 'whiteout', victim: name, form: 'overlay' }
  }
  if (name === WHITEOUT_OPAQUE) return { kind: 'opaque' }
  if (name.startsWith(WHITEOUT_META_PREFIX)) return { kind: 'meta' }
  if (name.startsWith(WHITEOUT_PREFIX)) {
    const victim = name.slice(WHITEOUT_PREFIX.length)
    if (victim === '' || victim === '.' || victim === '..') {
      throw new StrataError('UNSAFE_PATH', `The aufs whiteout "${path}" names "${victim}", which is not a file of its directory`, { details: { path } })
    }
    return { kind: 'whiteout', victim, form: 'aufs' }
  }
  return { kind: 'entry' }
}

/** One directory of a branch, read and classified. */
interface BranchDir {
  /** Whether the directory hides everything below it in lower branches. */
  opaque: boolean
  /** Names deleted from the branches below (aufs or overlay form), minus those the branch itself has again. */
  whiteouts: Array<{ victim: string; name: string; st: BigIntStats; form: 'aufs' | 'overlay' }>
  /** The directory's own content, sorted by name. */
  entries: Array<{ name: string; st: BigIntStats }>
  /** The opaque marker file, when aufs form (its metadata goes into the tar). */
  opaqueFile: BigIntStats | undefined
}

/**
 * Reads `dir` (`rel` inside the branch, '' for the root): its entries
 * sorted in byte order, classified. A directory that vanished reads as
 * empty, as a layer being written may lose entries under us.
 */
async function readBranchDir(root: string, rel: string): Promise<BranchDir> {
  const abs = rel === '' ? root : `${root}/${rel}`
  const out: BranchDir = { opaque: isOverlayOpaque(abs), whiteouts: [], entries: [], opaqueFile: undefined }
  const names = await sortedNames(abs, true)
  const present = new Set<string>()
  const candidates: BranchDir['whiteouts'] = []
  for (const name of names) {
    const st = await lstatOrUndefined(`${abs}/${name}`)
    if (st === undefined) continue
    const what = classifyBranchEntry(name, st, rel === '' ? name : `${rel}/${name}`)
    switch (what.kind) {
      case 'meta':
        break
      case 'opaque':
        out.opaque = true
        if (name === WHITEOUT_OPAQUE && st.isFile()) out.opaqueFile = st
        break
      case 'whiteout':
        candidates.push({ victim: what.victim, name, st, form: what.form })
        break
      case 'entry':
        present.add(name)
        out.entries.push({ name, st })
        break
    }
  }
  // A whiteout next to an entry of the same name hides only the lower one; the entry is what the layer has.
  const seen = new Set<string>()
  for (const w of candidates) {
    if (present.has(w.victim) || seen.has(w.victim)) continue
    seen.add(w.victim)
    out.whiteouts.push(w)
  }
  out.whiteouts.sort((a, b) => Buffer.compare(Buffer.from(a.victim), Buffer.from(b.victim)))
  return out
}

/**
 * Looks paths up in a stack of lower branches (nearest first) as aufs
 * shows them: a whiteout or a non-directory in a nearer branch hides the
 * path in every branch below, and so does an opaque directory for what is
 * under it. Nothing follows a symlink. Directory reads are cached.
 */
class UnionLookup {
  readonly #dirs = new Map<string, Promise<{ names: Set<string>; whiteouts: Set<string>; opaque: boolean } | undefined>>()
  constructor(readonly branches: readonly string[]) {}

  /** The branch directory `rel` of branch `i`: undefined when it is not a real directory there. */
  #dir(i: number, rel: string): Promise<{ names: Set<string>; whiteouts: Set<string>; opaque: boolean } | undefined> {
    const key = `${i}\0${rel}`
    let p = this.#dirs.get(key)
    if (p === undefined) {
      p = (async () => {
        const abs = rel === '' ? this.branches[i]! : `${this.branches[i]!}/${rel}`
        const st = await lstatOrUndefined(abs)
        if (st === undefined || !st.isDirectory()) return undefined
        const d = await readBranchDir(this.branches[i]!, rel)
        return { names: new Set(d.entries.map((e) => e.name)), whiteouts: new Set(d.whiteouts.map((w) => w.victim)), opaque: d.opaque }
      })()
      this.#dirs.set(key, p)
    }
    return p
  }

  /** The lstat of `rel` (no leading slash) in the union of the branches, or undefined when the union does not have it. */
  async lstat(rel: string): Promise<BigIntStats | undefined> {
    const parts = rel.split('/')
    // For each branch, nearest first: walk down the parents; what hides below stops the search.
    for (let i = 0; i < this.branches.length; i++) {
      let dir = ''
      let hiddenBelow = false
      let missing = false
      for (let k = 0; k < parts.length - 1; k++) {
        const d = await this.#dir(i, dir)
        if (d === undefined) {
          missing = true
          break
        }
        const name = parts[k]!
        if (d.whiteouts.has(name)) return undefined
        if (d.opaque) hiddenBelow = true
        if (!d.names.has(name)) {
          missing = true
          break
        }
        dir = dir === '' ? name : `${dir}/${name}`
        const st = await lstatOrUndefined(`${this.branches[i]!}/${dir}`)
        if (st === undefined) {
          missing = true
          break
        }
        if (!st.isDirectory()) return undefined // a file here shadows the path in every branch below
      }
      if (!missing) {
        const d = await this.#dir(i, dir)
        if (d !== undefined) {
          const name = parts[parts.length - 1]!
          if (d.names.has(name)) return lstatOrUndefined(`${this.branches[i]!}/${rel}`)
          if (d.whiteouts.has(name)) return undefined
          if (d.opaque) hiddenBelow = true
        }
      }
      if (hiddenBelow) return undefined
    }
    return undefined
  }
}

function childRel(rel: string, name: string): string {
  return rel === '' ? name : `${rel}/${name}`
}

/**
 * The changes the branch `branchDir` holds over the branches `lowerDirs`
 * (nearest first), in the vocabulary of `docker diff`, sorted by path:
 *
 *  - a whiteout (either form) is "D" of the path it deletes;
 *  - an opaque directory is "D" of its path, then its content is read like
 *    anything else (moby's overlay rule);
 *  - any other entry is "A", unless the lower union has the path: then
 *    "C", except a directory whose lower counterpart is a directory with
 *    the same size, mode and mtime (Go's sameFsTime), which is not reported
 *    (its content still is);
 *  - for every "A" and "D", the parent directory gets a "C" unless already
 *    reported (or it is "/");
 *  - aufs bookkeeping is never a change.
 */
export async function changesAufs(branchDir: string, lowerDirs: readonly string[]): Promise<Change[]> {
  const root = trimSlash(branchDir)
  await requireDir('aufs branch', branchDir)
  const lower = new UnionLookup(lowerDirs.map(trimSlash))
  const out: Change[] = []
  const changedDirs = new Set<string>()

  const record = (path: string, kind: ChangeKind, isDir: boolean, parent: string): void => {
    if (isDir) changedDirs.add(path)
    if ((kind === 'A' || kind === 'D') && parent !== '/' && !changedDirs.has(parent)) {
      out.push({ path: parent, kind: 'C' })
      changedDirs.add(parent)
    }
    out.push({ path, kind })
  }

  const walk = async (rel: string, d: BranchDir): Promise<void> => {
    const parent = `/${rel}`
    for (const w of d.whiteouts) record(`/${childRel(rel, w.victim)}`, 'D', false, parent)
    for (const e of d.entries) {
      const path = childRel(rel, e.name)
      const isDir = e.st.isDirectory()
      const sub = isDir ? await readBranchDir(root, path) : undefined
      let kind: ChangeKind | undefined
      const lst = await lower.lstat(path)
      // fuse-overlayfs marks every directory it creates opaque; one with nothing below it hides nothing.
      if (sub?.opaque === true && lst !== undefined) kind = 'D'
      else {
        if (lst === undefined) kind = 'A'
        else if (isDir && lst.isDirectory() && lst.size === e.st.size && lst.mode === e.st.mode && sameFsTime(lst.mtimeNs, e.st.mtimeNs)) kind = undefined
        else kind = 'C'
      }
      if (kind !== undefined) record(`/${path}`, kind, isDir, parent)
      if (sub !== undefined) await walk(path, sub)
    }
  }
  await walk('', await readBranchDir(root, ''))
  return sortChanges(out)
}

/**
 * The layer tar of an aufs branch (dockerd's aufs Diff, in aufs/OCI form
 * whatever wrote the branch): every entry but aufs's bookkeeping, walked
 * depth-first with names in byte order; each directory that is opaque
 * (either form) followed by one empty `<dir>/.wh..wh..opq` (the marker
 * file's own metadata when there is one, else the directory's permission
 * bits, owner and mtime) before its content, also for the branch root
 * (given `lowerDirs`, nearest first, only where they have the directory:
 * an opaque directory with nothing below hides nothing); each
 * deleted name as an empty regular file `.wh.<name>` (an aufs whiteout's
 * own mode, owner and mtime; a device's owner and mtime with mode 0600, as
 * overlay2's diff writes it). Hardlinks as in exportChanges, whiteouts
 * excepted. Headers 'lossless' unless asked (export.ts's HeaderStyle):
 * dockerd's aufs Diff writes its 'dockerd' headers, but this driver's
 * changes, read from the branch with moby's sameFsTime, would then see a
 * dir re-applied from its diff (mtime cut to the second) as unchanged.
 * Streamed; never holds a file in memory.
 */
export function exportAufsBranch(branchDir: string, lowerDirs?: readonly string[], opts: ExportOptions = {}): Readable {
  const root = trimSlash(branchDir)
  const lower = lowerDirs === undefined ? undefined : new UnionLookup(lowerDirs.map(trimSlash))

  async function* walk(ta: Appender, rel: string): AsyncGenerator<Buffer, void, undefined> {
    const d = await readBranchDir(root, rel)
    // With the lower branches known, a marker on a directory they do not have (fuse-overlayfs marks every new one) is left out.
    if (d.opaque && (lower === undefined || rel === '' || (await lower.lstat(rel)) !== undefined)) {
      const dirSt = rel === '' ? await lstatOrUndefined(root) : await lstatOrUndefined(`${root}/${rel}`)
      const src = d.opaqueFile ?? dirSt
      if (src !== undefined) {
        ta.addHeader({
          name: rel === '' ? WHITEOUT_OPAQUE : `${rel}/${WHITEOUT_OPAQUE}`,
          type: 'file',
          mode: Number(src.mode & (d.opaqueFile === undefined ? 0o777n : 0o7777n)),
          uid: Number(src.uid),
          gid: Number(src.gid),
          mtime: timespecOf(src.mtimeNs),
        })
      }
    }
    // Whiteouts and entries merged in name order, as one walk of the directory would meet them.
    const items: Array<{ key: string; whiteout?: BranchDir['whiteouts'][number]; entry?: BranchDir['entries'][number] }> = [
      ...d.whiteouts.map((w) => ({ key: `${WHITEOUT_PREFIX}${w.victim}`, whiteout: w })),
      ...d.entries.map((e) => ({ key: e.name, entry: e })),
    ]
    items.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)))
    for (const item of items) {
      if (item.whiteout !== undefined) {
        const w = item.whiteout
        const [parent] = splitName(childRel(rel, w.name))
        ta.addHeader({
          name: `${parent}${WHITEOUT_PREFIX}${w.victim}`,
          type: 'file',
          mode: w.form === 'aufs' ? Number(w.st.mode & 0o7777n) : 0o600,
          uid: Number(w.st.uid),
          gid: Number(w.st.gid),
          mtime: timespecOf(w.st.mtimeNs),
        })
        if (ta.out.size >= FLUSH_AT) yield ta.out.take()
        continue
      }
      const e = item.entry!
      const path = childRel(rel, e.name)
      yield* ta.addFile(`${root}/${path}`, path, e.st)
      if (e.st.isDirectory()) yield* walk(ta, path)
    }
  }

  async function* generate(): AsyncGenerator<Buffer, void, undefined> {
    await requireDir('aufs branch', branchDir)
    const ta = new Appender(opts.headers ?? 'lossless')
    yield* walk(ta, '')
    yield* ta.finish()
  }
  return toStream(generate())
}

function trimSlash(p: string): string {
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p
}

async function requireDir(what: string, dir: string): Promise<void> {
  const st = await lstatOrUndefined(dir)
  if (st === undefined) throw new StrataError('NOT_FOUND', `The ${what} "${dir}" does not exist`, { details: { path: dir } })
  if (!st.isDirectory()) throw new StrataError('INVALID_ARGUMENT', `The ${what} "${dir}" is not a directory`, { details: { path: dir } })
}

/**
 * Path safety for everything that turns archive names into filesystem paths.
 *
 * dockerd applies layers inside a chroot, so symlinks met on the way are
 * resolved inside the layer root. Node cannot chroot, so we resolve by hand
 * with the same meaning: each parent component is lstat'ed; a symlink is
 * followed with its target taken relative to the layer root (absolute) or to
 * its own directory (relative), and ".." never climbs above the root. The
 * final component is never followed: callers create, replace or remove the
 * link itself. Names whose ".." would climb above the root are refused
 * outright, as dockerd refuses them ("breakout").
 */
import { lstatSync, mkdirSync, readlinkSync, type Stats } from 'node:fs'
import { StrataError, isErrno } from '../errors/index.js'

/** Go's path.Clean for slash-separated paths ("" → ".", "./a/" → "a", "/../x" → "/x"). */
export function cleanPath(p: string): string {
  if (p === '') return '.'
  const rooted = p.startsWith('/')
  const out: string[] = []
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop()
      else if (!rooted) out.push('..')
      continue
    }
    out.push(part)
  }
  const joined = out.join('/')
  if (rooted) return `/${joined}`
  return joined === '' ? '.' : joined
}

/**
 * The components of an archive name relative to the layer root. A leading
 * "/" is taken as the layer root (as dockerd and containerd do); a ".."
 * that would climb above the root is refused with UNSAFE_PATH.
 * Returns [] for the root itself ("./", "/", ".").
 */
export function entryComponents(name: string, what = 'Entry'): string[] {
  const out: string[] = []
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') {
      if (out.length === 0) throw new StrataError('UNSAFE_PATH', `${what} "${name}" escapes the layer root with ".."`, { details: { name } })
      out.pop()
      continue
    }
    if (part.includes('\0')) throw new StrataError('UNSAFE_PATH', `${what} "${name}" contains a NUL byte`, { details: { name } })
    out.push(part)
  }
  return out
}

/**
 * True when a symlink at `linkComponents` (components of the link's own
 * path) with `target` stays inside the root when read lexically from the
 * link's directory. Absolute targets are inside by definition: they are
 * resolved against the container's root when used.
 */
export function symlinkStaysInside(linkComponents: readonly string[], target: string): boolean {
  if (target.startsWith('/')) return true
  let depth = linkComponents.length - 1
  for (const part of target.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') {
      depth--
      if (depth < 0) return false
    } else {
      depth++
    }
  }
  return true
}

const MAX_SYMLINKS = 40

/**
 * Resolves parent directories inside one root, caching what it resolved.
 * Call `invalidate()` after removing or replacing anything that may be a
 * directory on a cached path.
 */
export class ScopedResolver {
  readonly root: string
  readonly #cache = new Map<string, string>()

  constructor(root: string) {
    this.root = root.endsWith('/') && root.length > 1 ? root.slice(0, -1) : root
  }

  invalidate(): void {
    this.#cache.clear()
  }

  /**
   * The real absolute path of the directory holding `components` (all but
   * the last, resolved inside the root). With `create`, missing directories
   * are made (0755, root-owned, as dockerd does for tars without parent
   * entries); without it a missing one is a NOT_FOUND error.
   */
  parentDir(components: readonly string[], create: boolean): string {
    const n = components.length - 1
    if (n <= 0) return this.root
    const key = components.slice(0, n).join('/')
    const cached = this.#cache.get(key)
    if (cached !== undefined) return cached
    const resolved = this.#resolveBelowParent(components, n, create) ?? this.#resolve(components.slice(0, n), create, key)
    this.#cache.set(key, resolved)
    return resolved
  }

  /**
   * The directory `components[0..n)` resolved from its parent's resolution
   * (cached or computed the same way): one lstat for a plain directory
   * where #resolve walks every component from the root again (a deep tree
   * of thousands of directories cost an lstat per level per directory).
   * Undefined when the last component is not a plain directory name that
   * exists as a directory (or is made, with `create`): #resolve then does
   * it the long way, with its symlink handling and its errors.
   */
  #resolveBelowParent(components: readonly string[], n: number, create: boolean): string | undefined {
    const part = components[n - 1]!
    if (n < 2 || part === '' || part === '.' || part === '..') return undefined
    const parent = this.parentDir(components.slice(0, n), create)
    const current = `${parent}/${part}`
    let st: Stats
    try {
      st = lstatSync(current)
    } catch (err) {
      if (!create || !isErrno(err, 'ENOENT')) return undefined
      mkdirSync(current, 0o755)
      return current
    }
    return st.isDirectory() ? current : undefined
  }

  /** The path of `components` inside the root: resolved parent + final name (not followed). */
  path(components: readonly string[], create = false): string {
    if (components.length === 0) return this.root
    return `${this.parentDir(components, create)}/${components[components.length - 1]}`
  }

  #resolve(parts: string[], create: boolean, display: string): string {
    // `stack` holds the resolved components of the current directory below the root.
    const stack: string[] = []
    const todo = [...parts].reverse()
    let links = 0
    while (todo.length > 0) {
      const part = todo.pop()!
      if (part === '' || part === '.') continue
      if (part === '..') {
        stack.pop()
        continue
      }
      const current = stack.length === 0 ? `${this.root}/${part}` : `${this.root}/${stack.join('/')}/${part}`
      let st: Stats
      try {
        st = lstatSync(current)
      } catch (err) {
        if (!isErrno(err, 'ENOENT') || !create) {
          if (isErrno(err, 'ENOENT')) throw new StrataError('NOT_FOUND', `Parent directory "${display}" does not exist in "${this.root}"`, { cause: err })
          throw err
        }
        mkdirSync(current, 0o755)
        stack.push(part)
        continue
      }
      if (st.isSymbolicLink()) {
        if (++links > MAX_SYMLINKS) throw new StrataError('UNSAFE_PATH', `Too many levels of symbolic links resolving "${display}" in "${this.root}"`)
        const target = readlinkSync(current)
        if (target.startsWith('/')) stack.length = 0
        const expanded = target.split('/')
        for (let i = expanded.length - 1; i >= 0; i--) todo.push(expanded[i]!)
        continue
      }
      if (!st.isDirectory()) throw new StrataError('INVALID_ARGUMENT', `"${display}" is not a directory in "${this.root}" (a parent component is a ${describe(st)})`)
      stack.push(part)
    }
    return stack.length === 0 ? this.root : `${this.root}/${stack.join('/')}`
  }
}

function describe(st: Stats): string {
  if (st.isFile()) return 'regular file'
  if (st.isCharacterDevice()) return 'character device'
  if (st.isBlockDevice()) return 'block device'
  if (st.isFIFO()) return 'fifo'
  if (st.isSocket()) return 'socket'
  return 'non-directory'
}

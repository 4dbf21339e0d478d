/**
 * Files in and out of a container's filesystem (`docker cp`, the API's
 * /containers/{id}/archive), through its mounted rootfs, with dockerd's
 * path rules and never outside the container:
 *
 * - a path is taken from the container's root: `filepath.Join("/", p)`
 *   cleans it, so `../../etc/passwd` is the container's /etc/passwd;
 * - symlinks on the way are resolved inside the rootfs (an absolute
 *   target is the container's root, `..` stops there: ScopedResolver),
 *   the last component only when the path ends in `/` or `/.`, as
 *   dockerd's ResolvePath does;
 * - the stat (HEAD, and a header of GET) is docker's types.ContainerPathStat:
 *   name, size, Go's FileMode bits, mtime, and a symlink's target fully
 *   resolved inside the container;
 * - GET's tar holds the entry under its base name and, for a directory,
 *   everything below it (TarResourceRebase); PUT extracts a tar (plain or
 *   compressed) into an existing directory, every entry confined to it
 *   by the archive module's applier (entries with `..`, links pointing
 *   out: refused or kept inside).
 *
 * The rootfs is mounted for the operation (counted, so a running
 * container's mount is shared) and released when it ends.
 */
import { lstat, readlink, realpath } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import { applyDecompressed, cleanPath, exportPath, ScopedResolver } from '../archive/index.js'
import { StrataError, isErrno, isStrataError } from '../errors/index.js'
import type { Store } from '../store/index.js'

/** docker's types.ContainerPathStat. */
export interface ContainerPathStat {
  name: string
  size: number
  /** Go's os.FileMode: permission bits, with the type in the high bits. */
  mode: number
  /** RFC 3339 with nanoseconds. */
  mtime: string
  /** For a symlink: its target fully resolved inside the container, absolute; else "". */
  linkTarget: string
}

export interface ExtractOptions {
  /** docker's refusal to replace a directory with a non-directory or the reverse; accepted, not enforced yet (an entry replaces what it names). */
  noOverwriteDirNonDir?: boolean
}

export interface ArchiveOptions {
  /**
   * The name the tar's top entry takes instead of the path's base name
   * (docker's RebaseArchiveEntries, done here while the tar is written):
   * `.` for a directory's contents alone. `strata cp` names it after its destination.
   */
  name?: string
}

// Go's os.FileMode type bits.
const GO_MODE = { dir: 2 ** 31, symlink: 2 ** 27, device: 2 ** 26, namedPipe: 2 ** 25, socket: 2 ** 24, setuid: 2 ** 23, setgid: 2 ** 22, charDevice: 2 ** 21, sticky: 2 ** 20 }

/** Go's os.FileMode for a stat's st_mode. */
export function goFileMode(mode: number): number {
  let out = mode & 0o777
  const type = mode & 0o170000
  if (type === 0o040000) out += GO_MODE.dir
  else if (type === 0o120000) out += GO_MODE.symlink
  else if (type === 0o010000) out += GO_MODE.namedPipe
  else if (type === 0o140000) out += GO_MODE.socket
  else if (type === 0o020000) out += GO_MODE.device + GO_MODE.charDevice
  else if (type === 0o060000) out += GO_MODE.device
  if (mode & 0o4000) out += GO_MODE.setuid
  if (mode & 0o2000) out += GO_MODE.setgid
  if (mode & 0o1000) out += GO_MODE.sticky
  return out
}

interface Resolved {
  /** The host path of the entry (its last component not followed unless asked). */
  abs: string
  /** The base name docker reports and rebases the tar on. */
  name: string
}

/** The host path for container path `path` under `rootfs` (see the file header). */
function resolveInRootfs(rootfs: string, path: string): Resolved {
  const follow = path.endsWith('/') || path.endsWith('/.')
  const components = cleanPath(`/${path}`).split('/').filter((c) => c !== '')
  if (components.length === 0) return { abs: rootfs, name: '/' }
  const resolver = new ScopedResolver(rootfs)
  const name = components[components.length - 1]!
  // Following the last component too: resolve it as the parent of a child.
  const abs = follow ? resolver.parentDir([...components, '.'], false) : resolver.path(components, false)
  return { abs, name }
}

async function statResolved(rootfs: string, r: Resolved, path: string, id: string): Promise<ContainerPathStat> {
  let st
  try {
    st = await lstat(r.abs)
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) throw notFound(path, id, err)
    throw err
  }
  let linkTarget = ''
  if (st.isSymbolicLink()) linkTarget = await resolveLinkInside(rootfs, r.abs)
  return { name: r.name, size: st.size, mode: goFileMode(st.mode), mtime: new Date(st.mtimeMs).toISOString(), linkTarget }
}

/** MAXSYMLINKS, as the kernel counts them. */
const MAX_LINKS = 40

/**
 * A symlink's target resolved to the end inside the container (absolute,
 * from the container's root), as dockerd reports it: each hop's target is
 * read, taken from the root when absolute or from the link's directory,
 * and its parents resolved by the ScopedResolver, so nothing leaves the rootfs.
 */
async function resolveLinkInside(rootfs: string, linkAbs: string): Promise<string> {
  const resolver = new ScopedResolver(rootfs)
  let abs = linkAbs
  for (let hops = 0; hops < MAX_LINKS; hops++) {
    const rel = abs.slice(rootfs.length)
    const target = await readlink(abs)
    const dir = rel.slice(0, rel.lastIndexOf('/'))
    const components = cleanPath(target.startsWith('/') ? target : `/${dir}/${target}`).split('/').filter((c) => c !== '')
    if (components.length === 0) return '/'
    try {
      abs = resolver.path(components, false)
    } catch {
      // A parent that does not exist: the link dangles there.
      return `/${components.join('/')}`
    }
    const st = await lstat(abs).catch(() => undefined)
    if (st === undefined || !st.isSymbolicLink()) return `/${abs.slice(rootfs.length).replace(/^\/+/, '')}`
  }
  throw new StrataError('INVALID_ARGUMENT', `Too many levels of symbolic links at ${linkAbs.slice(rootfs.length)}`)
}

function notFound(path: string, id: string, cause?: unknown): StrataError {
  return new StrataError('NOT_FOUND', `Could not find the file ${path} in container ${id}`, { cause, details: { path, id } })
}

/** Runs `fn` on the container's mounted rootfs and unmounts after. */
async function withRootfs<T>(store: Store, id: string, fn: (rootfs: string) => Promise<T>): Promise<T> {
  const rootfs = await realpath(await store.layers.mount(id))
  try {
    return await fn(rootfs)
  } finally {
    await store.layers.unmount(id)
  }
}

/** Resolution errors of a missing component are the caller's "not found". */
function resolveOrNotFound(rootfs: string, path: string, id: string): Resolved {
  try {
    return resolveInRootfs(rootfs, path)
  } catch (err) {
    if (isStrataError(err, 'NOT_FOUND') || isStrataError(err, 'INVALID_ARGUMENT')) throw notFound(path, id, err)
    throw err
  }
}

/** HEAD /containers/{id}/archive: what is at `path` in the container. */
export async function statContainerPath(store: Store, ref: string, path: string): Promise<ContainerPathStat> {
  const c = await store.containers.get(ref)
  return withRootfs(store, c.id, async (rootfs) => statResolved(rootfs, resolveOrNotFound(rootfs, path, c.id), path, c.id))
}

/**
 * GET /containers/{id}/archive: the stat and a tar of `path`. The rootfs
 * stays mounted until the stream ends or is destroyed.
 */
export async function archiveFromContainer(store: Store, ref: string, path: string, opts: ArchiveOptions = {}): Promise<{ stat: ContainerPathStat; tar: Readable }> {
  const c = await store.containers.get(ref)
  const rootfs = await realpath(await store.layers.mount(c.id))
  let handedOver = false
  try {
    const r = resolveOrNotFound(rootfs, path, c.id)
    const stat = await statResolved(rootfs, r, path, c.id)
    const tar = exportPath(r.abs, opts.name ?? (r.name === '/' ? '.' : r.name))
    let released = false
    const release = (): void => {
      if (released) return
      released = true
      void store.layers.unmount(c.id).catch(() => {})
    }
    tar.once('close', release)
    tar.once('end', release)
    tar.once('error', release)
    handedOver = true
    return { stat, tar }
  } finally {
    if (!handedOver) await store.layers.unmount(c.id)
  }
}

/**
 * PUT /containers/{id}/archive: extracts `tar` into the directory `path`
 * of the container. NOT_FOUND when the directory does not exist,
 * INVALID_ARGUMENT when it is not a directory, UNSAFE_PATH for an entry
 * that would leave it.
 */
export async function extractToContainer(store: Store, ref: string, path: string, tar: Readable, opts: ExtractOptions = {}): Promise<void> {
  const c = await store.containers.get(ref)
  // noOverwriteDirNonDir (what the docker CLI always asks) is not enforced yet: the applier replaces what an entry names, as a layer apply must.
  void opts.noOverwriteDirNonDir
  await withRootfs(store, c.id, async (rootfs) => {
    // The destination itself is followed (it must be a directory to extract into).
    const r = resolveOrNotFound(rootfs, path.endsWith('/') ? path : `${path}/`, c.id)
    const st = await lstat(r.abs).catch((err: unknown) => {
      if (isErrno(err, 'ENOENT')) throw notFound(path, c.id, err)
      throw err
    })
    if (!st.isDirectory()) throw new StrataError('INVALID_ARGUMENT', `extraction point is not a directory: ${path} in container ${c.id}`)
    // `aufs` writes entries as they are: `.wh.` names are plain files here, as in docker's Untar.
    await applyDecompressed(r.abs, tar, { whiteouts: 'aufs' })
  })
}

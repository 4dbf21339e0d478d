/**
 * `strata cp` (`strata container cp`), docker's `docker cp`: files between
 * a container and the host, or a tar on stdin/stdout with `-`. The
 * container side is the library's (src/container/archive.ts, as the Engine
 * API's /containers/{id}/archive): paths taken from the container's root,
 * symlinks resolved inside it. This file makes the docker CLI's choices
 * (cli/command/container/cp.go, pkg/archive PrepareArchiveCopy): which
 * directory the tar is extracted into and what its top entry is named:
 *
 * - the destination is an existing directory: the source goes in under its
 *   own name, or its contents alone when the source ends in `/.`;
 * - else the destination's parent receives it under the destination's name
 *   (a directory onto an existing file, or a file onto a path ending in
 *   `/` that does not exist, is refused, as docker refuses them).
 */
import { lstat, realpath, stat } from 'node:fs/promises'
import { basename, dirname, resolve } from 'node:path'
import type { Readable } from 'node:stream'
import { applyDecompressed, exportPath } from '../archive/index.js'
import { archiveFromContainer, extractToContainer, statContainerPath, type ContainerPathStat } from '../container/index.js'
import { StrataError, isErrno, isStrataError } from '../errors/index.js'
import type { Store } from '../store/index.js'
import { checkArgCount, parseFlags } from './args.js'
import type { GlobalOptions } from './global.js'
import { writeOutput } from './io.js'
import type { CommandResult } from './output.js'
import { withStore } from './store.js'


/** Go's os.ModeDir and os.ModeSymlink in a ContainerPathStat's mode. */
const GO_DIR = 2 ** 31
const GO_SYMLINK = 2 ** 27
/** Go's os.ModeType: the bits of everything but a regular file. */
const GO_NOT_REGULAR = GO_DIR | GO_SYMLINK | 2 ** 26 | 2 ** 25 | 2 ** 24 | 2 ** 21 | 2 ** 19

/** `CONTAINER:PATH` → its parts; a local path (no colon before any slash, or starting with `/` or `.`) → undefined. */
function splitContainerPath(arg: string): { container: string; path: string } | undefined {
  if (arg.startsWith('/') || arg.startsWith('.')) return undefined
  const i = arg.indexOf(':')
  if (i <= 0) return undefined
  return { container: arg.slice(0, i), path: arg.slice(i + 1) }
}

/** docker's SplitPathDirEntry base: `.` for a path ending in `/.`, else the last name. */
function pathBase(p: string): string {
  if (p.endsWith('/.') || p === '.') return '.'
  const trimmed = p.replace(/\/+$/, '')
  return trimmed === '' ? '/' : basename(trimmed)
}

/** docker's SplitPathDirEntry dir, for a container path. */
function containerParent(p: string): string {
  const trimmed = p.replace(/\/+$/, '')
  const i = trimmed.lastIndexOf('/')
  return i <= 0 ? '/' : trimmed.slice(0, i)
}

/** `help`: the verb's help, which lives with the other container verbs' (CONTAINER_HELPS.cp). */
export async function cpCommand(args: string[], global: GlobalOptions, help: string): Promise<CommandResult> {
  const { values, positionals } = parseFlags(args, { archive: { type: 'boolean', short: 'a' }, 'follow-link': { type: 'boolean', short: 'L' } }, help)
  checkArgCount(positionals, { min: 2, max: 2 }, help)
  const [srcArg, dstArg] = positionals as [string, string]
  const src = splitContainerPath(srcArg)
  const dst = splitContainerPath(dstArg)
  if (src !== undefined && dst !== undefined) throw new StrataError('INVALID_ARGUMENT', 'copying between containers is not supported')
  if (src === undefined && dst === undefined) throw new StrataError('INVALID_ARGUMENT', 'must specify at least one container source')
  const follow = values['follow-link'] === true
  if (src !== undefined) {
    if (src.path === '') throw new StrataError('INVALID_ARGUMENT', 'filepath cannot be empty')
    await withStore(global, (store) => copyFromContainer(store, src.container, src.path, dstArg, follow))
  } else {
    if (dst!.path === '') throw new StrataError('INVALID_ARGUMENT', 'filepath cannot be empty')
    await withStore(global, (store) => copyToContainer(store, dst!.container, dst!.path, srcArg, follow))
  }
  return ''
}

async function copyFromContainer(store: Store, ref: string, srcPath: string, dstPath: string, follow: boolean): Promise<void> {
  let path = srcPath
  let srcBase = pathBase(srcPath)
  if (follow) {
    const st = await statContainerPath(store, ref, srcPath)
    // The library resolved the link's target inside the container; the copy keeps the link's name.
    if ((st.mode & GO_SYMLINK) !== 0) path = st.linkTarget
  }
  if (dstPath === '-') {
    const { tar } = await archiveFromContainer(store, ref, path)
    await writeOutput('-', tar)
    return
  }
  const abs = resolve(dstPath)
  // os.Stat, as docker's CopyInfoDestinationPath: a symlink destination is followed.
  const dstStat = await lstat(abs).then(
    async (l) => (l.isSymbolicLink() ? await stat(abs).catch(() => l) : l),
    (err: unknown) => {
      if (isErrno(err, 'ENOENT')) return undefined
      throw err
    },
  )
  const dst = { exists: dstStat !== undefined, isDir: dstStat?.isDirectory() === true }
  if (dst.isDir) {
    // Into the directory, under the source's own name (`.`: its contents).
    const dir = await realpath(abs)
    await extractLocal(dir, await archiveFromContainer(store, ref, path, { name: srcBase === '/' ? '.' : srcBase }), () => {})
    return
  }
  const parent = dirname(abs)
  const parentStat = await stat(parent).catch(() => undefined)
  if (parentStat === undefined || !parentStat.isDirectory()) throw new StrataError('NOT_FOUND', `the destination's directory ${parent} does not exist`, { details: { path: parent } })
  srcBase = basename(abs)
  await extractLocal(parent, await archiveFromContainer(store, ref, path, { name: srcBase }), (st) => {
    const srcIsDir = (st.mode & GO_DIR) !== 0
    if (dst.exists && srcIsDir) throw new StrataError('INVALID_ARGUMENT', `cannot copy a directory to a file: ${dstPath}`)
    if (!dst.exists && !srcIsDir && (dstPath.endsWith('/') || dstPath.endsWith('/.'))) throw new StrataError('NOT_FOUND', `no such directory: ${dstPath}`)
  })
}

/** Extracts the container's tar into `dir` on the host with the archive module's applier (every entry kept inside `dir`), after `check` accepts the stat. */
async function extractLocal(dir: string, got: { stat: ContainerPathStat; tar: Readable }, check: (st: ContainerPathStat) => void): Promise<void> {
  try {
    check(got.stat)
  } catch (err) {
    got.tar.destroy()
    throw err
  }
  await applyDecompressed(dir, got.tar, { whiteouts: 'aufs' })
}

async function copyToContainer(store: Store, ref: string, dstPath: string, srcPath: string, follow: boolean): Promise<void> {
  let dstDir = dstPath
  let dstExists = false
  let dstIsDir = false
  let st: ContainerPathStat | undefined
  try {
    st = await statContainerPath(store, ref, dstPath)
    if ((st.mode & GO_SYMLINK) !== 0) {
      dstDir = st.linkTarget
      st = await statContainerPath(store, ref, dstDir)
    }
  } catch (err) {
    if (!isStrataError(err, 'NOT_FOUND')) throw err
    st = undefined
  }
  if (st !== undefined) {
    dstExists = true
    dstIsDir = (st.mode & GO_DIR) !== 0
    const regular = (st.mode & GO_NOT_REGULAR) === 0 || dstIsDir
    if (!regular) throw new StrataError('INVALID_ARGUMENT', `destination "${ref}:${dstPath}" must be a directory or a regular file`)
  }
  if (srcPath === '-') {
    if (!dstIsDir) throw new StrataError('INVALID_ARGUMENT', `destination "${ref}:${dstPath}" must be a directory`)
    await extractToContainer(store, ref, dstDir, process.stdin)
    return
  }
  const local = resolve(srcPath)
  const lst = await lstat(local).catch((err: unknown) => {
    if (isErrno(err, 'ENOENT')) throw new StrataError('NOT_FOUND', `could not find the file ${srcPath}`, { cause: err, details: { path: srcPath } })
    throw err
  })
  let abs = srcPath.endsWith('/.') ? `${local}/.` : local
  if (follow && lst.isSymbolicLink()) abs = await realpath(local)
  const srcIsDir = (await stat(abs)).isDirectory() && (lst.isDirectory() || follow || srcPath.endsWith('/') || srcPath.endsWith('/.'))
  let name = pathBase(srcPath)
  let into = dstDir
  if (!(dstExists && dstIsDir)) {
    if (dstExists && srcIsDir) throw new StrataError('INVALID_ARGUMENT', `cannot copy a directory to a file: ${ref}:${dstPath}`)
    if (!dstExists && !srcIsDir && (dstPath.endsWith('/') || dstPath.endsWith('/.'))) throw new StrataError('NOT_FOUND', `no such directory: ${ref}:${dstPath}`)
    name = pathBase(dstDir)
    into = containerParent(dstDir)
  }
  await extractToContainer(store, ref, into, exportPath(abs, name))
}

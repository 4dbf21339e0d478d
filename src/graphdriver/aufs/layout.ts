/**
 * aufs's files on disk, exactly as dockerd 20.10 lays them out
 * (daemon/graphdriver/aufs: aufs.go, dirs.go), plus what the aufs kernel
 * module itself leaves in a branch it mounted read-write.
 *
 *   <root>/aufs/                          0701  the driver's home (dockerd 20.10.3+; 0700 before)
 *   ├── diff/                             0701
 *   │   ├── <base id>/                    0755  a layer's own files, as its tar had them: deletions are
 *   │   │                                       empty files `.wh.<name>`, a directory hiding what is below
 *   │   │                                       it holds an empty `.wh..wh..opq` (aufs reads both natively)
 *   │   ├── <id>/                         0755  a child: only its own files, same form
 *   │   ├── <container id>/               0755  a read-write branch; once aufs mounted it read-write:
 *   │   │   ├── .wh..wh.aufs              0444  the whiteout base: every `.wh.` aufs creates is a hardlink
 *   │   │   │                                   of this empty file (a new base when it runs out of links)
 *   │   │   ├── .wh..wh.plnk/             0700  pseudo-links of copied-up hardlinked files; `auplink flush`
 *   │   │   │                                   (dockerd's Unmount) turns them into real links
 *   │   │   ├── .wh..wh.orph/             0700  orphaned inodes (removed while open)
 *   │   │   └── dir/.wh..wh.<name>.<4hex>       a directory being removed (renamed, then deleted)
 *   │   └── <id>-removing/                      a layer being deleted (dockerd's atomicRemove)
 *   ├── layers/                           0701
 *   │   ├── <base id>                     0644  empty
 *   │   └── <id>                          0644  "<parent>\n<grandparent>\n...<base>\n": every ancestor,
 *   │                                           nearest first, one per line; the first is the parent
 *   ├── mnt/                              0701
 *   │   ├── <id>/                         0755  the mount point of a layer with ancestors (empty when not
 *   │   │                                       mounted); a base layer is never mounted, get returns diff/<id>
 *   │   └── <id>-removing/
 *   └── fuse-work/                        0700  strata only: fuse-overlayfs's work dirs, <id>/ while that
 *                                               layer is mounted through fuse-overlayfs (dockerd ignores it)
 *
 * A layer exists when layers/<id> does (dockerd's Exists); create writes
 * it last, so a crash leaves diff/ and mnt/ dirs that remove() cleans.
 * Names starting `.wh..wh.` at a branch's top are aufs's bookkeeping,
 * never layer content: diffs leave them out (moby's exclude pattern
 * `.wh..wh.*` with the exception `!.wh..wh..opq`).
 *
 * Mounting, the kernel way (dockerd's aufsMount): mount(2) of "aufs" with
 * `br:<rw>=rw:<parent>=ro+wh:...:<base>=ro+wh,dio,xino=/dev/shm/aufs.xino`
 * and `,dirperm1` when the module knows it. mount(2) copies one page of
 * options, so dockerd reserves room: the branch list may use
 * 4096 - 54 - len(",dirperm1") - len(mount label) bytes; the branches
 * that did not fit are added by remounts (MS_REMOUNT) whose option strings
 * are `append:<dir>=ro+wh,` repeated up to the same limit. With 64-hex ids
 * under /var/lib/docker/aufs/diff/ (90-byte branch paths) a read-only
 * branch costs 97 bytes in the first mount and 104 in a remount, so the
 * first mount takes 40 of them and each remount 38. (The aufs module
 * itself stacks at most 127 branches unless built with a larger
 * CONFIG_AUFS_BRANCH_MAX_*.)
 *
 * Mounting without aufs in the kernel (Debian's, this machine's): the same
 * branches through fuse-overlayfs, `lowerdir=<parent>:...:<base>,
 * upperdir=<rw>,workdir=fuse-work/<id>`. fuse-overlayfs honours aufs
 * whiteouts (`.wh.<name>`, `.wh..wh..opq`) in every branch and hides the
 * `.wh..wh.*` bookkeeping, so read-only branches are used byte for byte
 * as aufs wrote them. What it writes into the rw branch is overlay style:
 * a deletion is a 0/0 character device, an opaque directory has
 * trusted.overlay.opaque=y (plus an empty `.wh..wh..opq` of its own and a
 * 0/0 device named `.wh..opq`), a copied-up file a user.fuseoverlayfs.origin
 * attribute. Diffs and changes read both forms (aufs-branch.ts in
 * src/archive). fuse-overlayfs takes its options on its command line, not
 * through mount(2), so no page limit applies there.
 */
import { join } from 'node:path'
import { StrataError } from '../../errors/index.js'

export const DRIVER_NAME = 'aufs'
export const DIFF_DIR = 'diff'
export const LAYERS_DIR = 'layers'
export const MNT_DIR = 'mnt'
export const FUSE_WORK_DIR = 'fuse-work'
export const REMOVING_SUFFIX = '-removing'

export const HOME_MODE = 0o701
export const SUBDIR_MODE = 0o701
export const LAYER_DIR_MODE = 0o755
export const LAYERS_FILE_MODE = 0o644
export const FUSE_WORK_MODE = 0o700

/** What aufs creates at the top of a branch it mounts read-write (aufs's AUFS_BASE_NAME, AUFS_PLINKDIR_NAME, AUFS_ORPHDIR_NAME). */
export const WH_BASE = '.wh..wh.aufs'
export const WH_PLINK_DIR = '.wh..wh.plnk'
export const WH_ORPH_DIR = '.wh..wh.orph'
/** aufs's WH_MASK: the base file's mode. Its plnk and orph dirs are 0700 (S_IRWXU). */
export const WH_BASE_MODE = 0o444
export const WH_META_DIR_MODE = 0o700

/** The option string dockerd adds after the branches. */
export const MOUNT_OPTIONS = 'dio,xino=/dev/shm/aufs.xino'
export const DIRPERM1 = ',dirperm1'
/** Bytes dockerd keeps free in the page for the options after the branches (54, plus ",dirperm1" when used). */
export const RESERVED_OPTION_BYTES = 54
export const PAGE_SIZE = 4096

/** The kernel filesystem type names this driver's mounts show in mountinfo. */
export const KERNEL_FS_TYPE = 'aufs'
export const FUSE_FS_TYPE = 'fuse.fuse-overlayfs'

/**
 * Checks a layer id before it becomes a path under the home (ids come from
 * the caller, and from layers/ files another tool may have written): one
 * plain path component, nothing aufs's or fuse-overlayfs's option strings
 * cannot carry (',' ':' '=' '\\' or control characters), and not one of
 * the names this driver gives its transient dirs.
 */
export function validateLayerId(id: string, what = 'Layer id'): void {
  if (typeof id !== 'string' || id === '') throw new StrataError('INVALID_ARGUMENT', `${what} is empty`)
  if (id === '.' || id === '..' || id.includes('/')) {
    throw new StrataError('UNSAFE_PATH', `${what} "${id}" is not a plain name: it would point outside the aufs home`, { details: { id } })
  }
  if (/[,:=\\\x00-\x1f\x7f]/.test(id)) {
    throw new StrataError('INVALID_ARGUMENT', `${what} ${JSON.stringify(id)} holds a character aufs branch options cannot carry (",", ":", "=", "\\" or a control character)`, {
      details: { id },
    })
  }
  if (id.endsWith(REMOVING_SUFFIX)) throw new StrataError('INVALID_ARGUMENT', `${what} "${id}" ends with "${REMOVING_SUFFIX}", which marks layers being deleted`, { details: { id } })
  if (Buffer.byteLength(id) > 200) throw new StrataError('INVALID_ARGUMENT', `${what} "${id.slice(0, 40)}..." is longer than 200 bytes`, { details: { id } })
}

/** `<home>/diff/<id>`: the layer's own files (its branch). */
export function diffPath(home: string, id: string): string {
  return join(home, DIFF_DIR, id)
}

/** `<home>/layers/<id>`: the layer's ancestors. */
export function layersPath(home: string, id: string): string {
  return join(home, LAYERS_DIR, id)
}

/** `<home>/mnt/<id>`: where a layer with ancestors is mounted. */
export function mntPath(home: string, id: string): string {
  return join(home, MNT_DIR, id)
}

/** `<home>/fuse-work/<id>`: fuse-overlayfs's work dir for the layer's mount. */
export function fuseWorkPath(home: string, id: string): string {
  return join(home, FUSE_WORK_DIR, id)
}

/** The content of a new layer's layers/ file: the parent, then the parent's own ancestors (dockerd's Create: Fprintln each). */
export function layersFileContent(parent: string | null, parentAncestors: readonly string[]): string {
  if (parent === null) return ''
  return [parent, ...parentAncestors].map((id) => `${id}\n`).join('')
}

/**
 * The ancestors a layers/ file lists, nearest first (dockerd's
 * getParentIDs: one per line, blank lines skipped). Every line must be a
 * plain layer id: `../../etc` would make a mount or a diff read outside
 * the home, so it is CORRUPT; so is an id listed twice (a loop).
 */
export function parseLayersFile(content: string, id: string): string[] {
  const out: string[] = []
  for (const raw of content.split('\n')) {
    const line = raw.replace(/\r$/, '')
    if (line === '') continue
    try {
      validateLayerId(line, 'Ancestor')
    } catch (err) {
      throw new StrataError('CORRUPT', `The aufs layers file of layer "${id}" names ${JSON.stringify(line)}, which is not a layer id: ${(err as Error).message}`, {
        cause: err,
        details: { id, entry: line },
      })
    }
    if (line === id || out.includes(line)) {
      throw new StrataError('CORRUPT', `The aufs layers file of layer "${id}" names "${line}" twice or names the layer itself (a loop)`, { details: { id, entry: line } })
    }
    out.push(line)
  }
  return out
}

/** A kernel aufs mount: the first mount(2)'s option string, then one option string per remount. */
export interface AufsMountPlan {
  data: string
  appends: string[]
}

export interface AufsMountPlanOptions {
  /** Add `,dirperm1` (when the aufs module supports it, as dockerd's useDirperm probes). */
  dirperm1: boolean
  /** An SELinux mount label (takes room in the page, as in dockerd); none on this host. */
  mountLabel?: string
  /** mount(2)'s option page (default 4096). */
  pageSize?: number
}

/**
 * dockerd's aufsMount, as a pure function: the branches `br:<rw>=rw`,
 * then `:<ro>=ro+wh` for each read-only branch (nearest first) while they
 * fit, then `,dio,xino=/dev/shm/aufs.xino[,dirperm1]`; the branches that
 * did not fit go into remounts of `append:<ro>=ro+wh,` pieces, as many
 * per remount as fit. A single branch longer than the room is
 * NOT_SUPPORTED (dockerd would loop forever on it).
 */
export function aufsMountPlan(rw: string, ro: readonly string[], opts: AufsMountPlanOptions): AufsMountPlan {
  const pageSize = opts.pageSize ?? PAGE_SIZE
  const label = opts.mountLabel ?? ''
  const room = pageSize - Buffer.byteLength(label) - RESERVED_OPTION_BYTES - (opts.dirperm1 ? DIRPERM1.length : 0)
  for (const p of [rw, ...ro]) {
    if (/[,:=]/.test(p)) throw new StrataError('INVALID_ARGUMENT', `aufs branch "${p}" holds ",", ":" or "=", which its mount options cannot carry`)
  }
  let first = `br:${rw}=rw`
  if (Buffer.byteLength(first) > room) throw branchTooLong(rw, room)
  let i = 0
  for (; i < ro.length; i++) {
    const piece = `:${ro[i]}=ro+wh`
    if (Buffer.byteLength(first) + Buffer.byteLength(piece) > room) break
    first += piece
  }
  const appends: string[] = []
  while (i < ro.length) {
    let data = ''
    for (; i < ro.length; i++) {
      const piece = `append:${ro[i]}=ro+wh,`
      if (Buffer.byteLength(data) + Buffer.byteLength(piece) > room) break
      data += piece
    }
    if (data === '') throw branchTooLong(ro[i]!, room)
    appends.push(withLabel(data, label))
  }
  return { data: withLabel(`${first},${MOUNT_OPTIONS}${opts.dirperm1 ? DIRPERM1 : ''}`, label), appends }
}

function branchTooLong(branch: string, room: number): StrataError {
  return new StrataError('NOT_SUPPORTED', `aufs branch "${branch}" is too long for a mount option page (${room} bytes of room)`, { details: { branch, room } })
}

/** go-selinux's FormatMountLabel: `<data>,context="<label>"` when there is a label. */
function withLabel(data: string, label: string): string {
  if (label === '') return data
  return data === '' ? `context="${label}"` : `${data},context="${label}"`
}

/**
 * The fuse-overlayfs command line for the same branches: the read-only
 * branches (nearest first) as lowerdir, the rw branch as upperdir, and a
 * work dir on the same filesystem. fuse-overlayfs splits lowerdir on ':'
 * and its -o list on ',', so neither may appear in a path.
 */
export function fuseOverlayfsArgs(rw: string, ro: readonly string[], work: string, target: string): string[] {
  if (ro.length === 0) throw new StrataError('INVALID_ARGUMENT', 'A fuse-overlayfs mount needs at least one read-only branch')
  for (const p of [rw, work, ...ro]) {
    if (/[,:\\]/.test(p)) throw new StrataError('INVALID_ARGUMENT', `fuse-overlayfs cannot be given the path "${p}": it holds ",", ":" or "\\"`)
  }
  return ['-o', `lowerdir=${ro.join(':')},upperdir=${rw},workdir=${work}`, target]
}

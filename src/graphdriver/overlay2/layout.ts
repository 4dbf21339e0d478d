/**
 * overlay2's files on disk, exactly as dockerd 20.10 lays them out, and the
 * pure functions that turn them into mount options.
 *
 *   <root>/overlay2/                     0710  the driver's home
 *   ├── l/                               0700  short names, so mount options fit a page
 *   │   ├── 6Y5IM2XC7TSNIJZZFLJCS6I4I3 -> ../<base id>/diff
 *   │   ├── QTKZPGF4YRXWRU4LFVUTWCGDQM -> ../<image id>/diff
 *   │   └── Z4KGR7IYXN4ZFIMSKRHVUPS5QV -> ../<container id>/diff
 *   ├── <base id>/                       0710  a layer without a parent
 *   │   ├── diff/                        0755  the layer's own files (the whole tree)
 *   │   ├── link                         0644  "6Y5IM2XC7TSNIJZZFLJCS6I4I3" (no newline)
 *   │   └── committed                    0600  empty: a child was created on this layer
 *   ├── <image id>/                      0710  a layer with a parent
 *   │   ├── diff/                        0755  its changes, overlay style (0/0 char device
 *   │   │                                      whiteouts, trusted.overlay.opaque=y dirs)
 *   │   ├── link                         0644  "QTKZPGF4YRXWRU4LFVUTWCGDQM"
 *   │   ├── lower                        0644  "l/6Y5IM2XC7TSNIJZZFLJCS6I4I3" (nearest parent first,
 *   │   │                                      ':'-separated, no newline)
 *   │   ├── work/                        0700  overlayfs's scratch dir (only with a parent)
 *   │   └── committed                    0600
 *   └── <container id>/                  0710
 *       ├── diff/  link  work/
 *       ├── lower                        0644  "l/QTKZPGF4YRXWRU4LFVUTWCGDQM:l/6Y5IM2XC7TSNIJZZFLJCS6I4I3"
 *       └── merged/                      0700  created by the first get, removed by the last put
 *
 * A base layer is never mounted: get returns its diff dir. Any other layer
 * is mounted at merged/: read-write (lowerdir=<lower>, upperdir=diff,
 * workdir=work) while it has no child, read-only (lowerdir=diff:<lower>,
 * no upper) once `committed` says it has one, because kernels since 5.2
 * refuse (EBUSY) an upper dir that another overlay uses as a lower.
 *
 * The arithmetic of the limits. mount(2) copies at most one page (4096
 * bytes, the last one a NUL) of option string. Short IDs are 26 characters
 * of base32 (A-Z, 2-7), so one lower costs `l/` + 26 + `:` = 29 bytes
 * when written relative to the home: dockerd's bound
 * (26 + len("l") + 1) * 128 = 3584 <= 4096 - 512 leaves 512 bytes for
 * index=off, upperdir=<id>/diff, workdir=<id>/work and a mount label.
 * Written as absolute paths (which is what dockerd tries first) a lower
 * costs len(home) + 29, so only a few dozen fit; beyond that dockerd
 * chdirs into the home and passes relative paths. That is the legacy plan
 * here too, for up to 128 lowers (dockerd's maxDepth).
 *
 * The kernel itself stacks up to 500 lowers (OVL_MAX_STACK), but 500
 * relative lowers are 14,500 bytes: more than a page however they are
 * spelled. The new mount API passes each lower in its own
 * fsconfig("lowerdir+", path) call, with no page limit, so 129 to 500
 * lowers go that way. A layer's lower file therefore holds at most 500
 * entries here (dockerd stops at 128, and writes the same files).
 */
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { StrataError } from '../../errors/index.js'
import type { FsConfigOption } from '../../sys/index.js'

export const DRIVER_NAME = 'overlay2'
export const LINK_DIR = 'l'
export const DIFF_DIR = 'diff'
export const WORK_DIR = 'work'
export const MERGED_DIR = 'merged'
export const LINK_FILE = 'link'
export const LOWER_FILE = 'lower'
export const COMMITTED_FILE = 'committed'

export const HOME_MODE = 0o710
export const LINK_DIR_MODE = 0o700
export const LAYER_DIR_MODE = 0o710
export const DIFF_DIR_MODE = 0o755
export const WORK_DIR_MODE = 0o700
export const MERGED_DIR_MODE = 0o700
export const LINK_FILE_MODE = 0o644
export const LOWER_FILE_MODE = 0o644
export const COMMITTED_FILE_MODE = 0o600

/** Characters in a short ID (dockerd's idLength). */
export const SHORT_ID_LENGTH = 26
/** dockerd's maxDepth: the most lowers it ever writes, and the most we mount through mount(2). */
export const LEGACY_MAX_LOWERS = 128
/** The kernel's OVL_MAX_STACK: the most lower dirs one overlay mount can stack. */
export const MAX_LOWERS = 500
/** mount(2) copies one page of option data; the page size on every architecture we run on. */
export const PAGE_SIZE = 4096

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

/**
 * A new short ID, as dockerd's overlayutils.GenerateID(26): 17 random bytes
 * (enough for 26 base32 digits), base32 with the standard upper-case
 * alphabet, cut to 26 characters.
 */
export function generateShortId(random: (size: number) => Buffer = randomBytes): string {
  const bytes = random(Math.ceil((SHORT_ID_LENGTH * 5) / 8))
  let out = ''
  let bits = 0
  let acc = 0
  for (const byte of bytes) {
    acc = (acc << 8) | byte
    bits += 8
    while (bits >= 5) {
      bits -= 5
      out += BASE32[(acc >> bits) & 31]
    }
    acc &= (1 << bits) - 1
  }
  if (bits > 0) out += BASE32[(acc << (5 - bits)) & 31]
  return out.slice(0, SHORT_ID_LENGTH)
}

/**
 * True for a name that may appear under `l/`. dockerd always writes 26
 * base32 characters; we accept any run of letters and digits so a data
 * root from another tool still reads, but nothing that could walk out of
 * `l/` or break a ':'-separated list.
 */
export function isShortId(s: string): boolean {
  return /^[A-Za-z0-9]{1,64}$/.test(s)
}

/**
 * Checks a layer id before it becomes a path under the home. Ids are the
 * caller's (64 hex digits, `<hex>-init`, test names). One that is not a
 * single path component would name something outside the home
 * (UNSAFE_PATH); `l` is the link dir; and ',', ':' and a backslash cannot be
 * spelled in overlay mount options (they separate and escape options and
 * lower dirs), nor can control characters be trusted to survive them.
 */
export function validateLayerId(id: string, what = 'Layer id'): void {
  if (typeof id !== 'string' || id === '') throw new StrataError('INVALID_ARGUMENT', `${what} is empty`)
  if (id === '.' || id === '..' || id.includes('/')) {
    throw new StrataError('UNSAFE_PATH', `${what} "${id}" is not a plain name: it would point outside the overlay2 home`, { details: { id } })
  }
  if (id === LINK_DIR) throw new StrataError('INVALID_ARGUMENT', `${what} "${id}" is reserved: overlay2 keeps its short links in "${LINK_DIR}/"`)
  if (/[,:\\\x00-\x1f\x7f]/.test(id)) {
    throw new StrataError('INVALID_ARGUMENT', `${what} ${JSON.stringify(id)} holds a character overlay mount options cannot carry (",", ":", "\\" or a control character)`, {
      details: { id },
    })
  }
  if (Buffer.byteLength(id) > 255) throw new StrataError('INVALID_ARGUMENT', `${what} "${id.slice(0, 40)}..." is longer than 255 bytes`, { details: { id } })
}

/** Where `l/<shortId>` points: the layer's diff dir, relative to `l/`. */
export function linkTarget(id: string): string {
  return `../${id}/${DIFF_DIR}`
}

/** `l/<shortId>`: how a lower file names a layer. */
export function lowerEntry(shortId: string): string {
  return `${LINK_DIR}/${shortId}`
}

/**
 * The lower file of a new child of a parent whose link is `parentLink`
 * and whose own lower file holds `parentLower` (undefined for a base
 * layer): the parent first, then the parent's lowers (dockerd's getLower).
 */
export function lowerString(parentLink: string, parentLower?: string): string {
  const entries = [lowerEntry(parentLink)]
  if (parentLower !== undefined && parentLower !== '') entries.push(...parseLower(parentLower))
  return entries.join(':')
}

/**
 * The entries of a lower file (`l/A:l/B`), nearest first. Each must be
 * `l/<short id>`: a lower file naming anything else (`../../etc`) would
 * make a mount reach outside the home, so it is CORRUPT.
 */
export function parseLower(content: string, where = 'lower file'): string[] {
  const entries = content.split(':')
  for (const entry of entries) {
    const slash = entry.indexOf('/')
    if (slash < 0 || entry.slice(0, slash) !== LINK_DIR || !isShortId(entry.slice(slash + 1))) {
      throw new StrataError('CORRUPT', `The ${where} names "${entry}", which is not "${LINK_DIR}/<short id>"`, {
        details: { content },
      })
    }
  }
  return entries
}

/** The error for a stack deeper than overlayfs can mount. */
export function tooManyLayers(count: number): StrataError {
  return new StrataError('NOT_SUPPORTED', `image has ${count} layers; overlayfs on this kernel stacks at most ${MAX_LOWERS}`, {
    details: { layers: count, max: MAX_LOWERS },
  })
}

export interface MountPlanOptions {
  /** The driver home, absolute. `lowers`, `upper` and `work` are relative to it. */
  home: string
  /** Add `index=off` first, as dockerd does when /sys/module/overlay/parameters/index exists. */
  indexOff: boolean
  /**
   * 'auto' (default): mount(2) for up to 128 lowers when the options fit a
   * page, the new API beyond. 'legacy' / 'new': only that API (legacy
   * fails with NOT_SUPPORTED where it cannot fit).
   */
  api?: 'auto' | 'legacy' | 'new'
  /**
   * Whether the caller can chdir into the home for a relative option
   * string (default true; a worker thread cannot chdir). Without it a
   * legacy plan must fit a page with absolute paths.
   */
  allowRelative?: boolean
  /** Bytes of option data mount(2) accepts, including the NUL (default 4096). */
  pageSize?: number
  /** Add overlay's `volatile` (read-write mounts only): see GetOpts.volatile. */
  volatile?: boolean
}

/**
 * How to mount one overlay:
 * - `legacy`: mount(2) of "overlay" with `data` as the option string; when
 *   `relative` the paths in it are relative to `cwd` (the home), so the
 *   caller must chdir there around the call;
 * - `new`: fsopen("overlay") then fsconfig of each option in order.
 */
export type MountPlan =
  | { api: 'legacy'; data: string; cwd: string; relative: boolean }
  | { api: 'new'; options: FsConfigOption[] }

/**
 * Plans the mount of an overlay whose lower dirs are `lowers` (paths
 * relative to the home, nearest first: `l/<short id>` entries, preceded by
 * `<id>/diff` for a read-only mount) with `upper` and `work` (relative,
 * both null for a read-only mount).
 *
 * Like dockerd, the legacy plan spells paths absolutely when the string
 * fits in a page (no chdir needed) and relative to the home otherwise.
 * Never adds `userxattr`: we run as root, where overlayfs keeps its
 * metadata in trusted.* attributes.
 */
export function mountPlan(lowers: string[], upper: string | null, work: string | null, opts: MountPlanOptions): MountPlan {
  if (lowers.length === 0) throw new StrataError('INVALID_ARGUMENT', 'An overlay mount needs at least one lower dir')
  if ((upper === null) !== (work === null)) {
    throw new StrataError('INVALID_ARGUMENT', `An overlay mount needs both an upper and a work dir or neither (upper "${upper}", work "${work}")`)
  }
  if (lowers.length > MAX_LOWERS) throw tooManyLayers(lowers.length)
  for (const p of [...lowers, upper, work]) {
    if (p !== null && (p.startsWith('/') || p.includes(',') || p.includes(':') || p.split('/').includes('..'))) {
      throw new StrataError('INVALID_ARGUMENT', `Overlay path "${p}" must be relative to the home, without ".." , "," or ":"`)
    }
  }
  const api = opts.api ?? 'auto'
  const pageSize = opts.pageSize ?? PAGE_SIZE
  const prefix = opts.indexOff ? 'index=off,' : ''
  const data = (spell: (p: string) => string): string =>
    `${prefix}lowerdir=${lowers.map(spell).join(':')}` +
    (upper === null || work === null ? '' : `,upperdir=${spell(upper)},workdir=${spell(work)}${opts.volatile === true ? ',volatile' : ''}`)
  // mount(2) reads at most a page, the NUL included.
  const fits = (s: string): boolean => Buffer.byteLength(s) <= pageSize - 1

  if (api !== 'new' && lowers.length <= LEGACY_MAX_LOWERS) {
    // A home containing ',' or ':' cannot be spelled in an option string.
    if (!/[,:]/.test(opts.home)) {
      const absolute = data((p) => join(opts.home, p))
      if (fits(absolute)) return { api: 'legacy', data: absolute, cwd: opts.home, relative: false }
    }
    const relative = data((p) => p)
    if ((opts.allowRelative ?? true) && fits(relative)) return { api: 'legacy', data: relative, cwd: opts.home, relative: true }
  }
  if (api === 'legacy') {
    throw new StrataError(
      'NOT_SUPPORTED',
      `Mounting ${lowers.length} lower dirs does not fit mount(2)'s one-page option string (overlay2.mountapi=legacy); use the new mount API`,
    )
  }
  const options: FsConfigOption[] = [['source', 'overlay']]
  if (opts.indexOff) options.push(['index', 'off'])
  for (const lower of lowers) options.push(['lowerdir+', join(opts.home, lower)])
  if (upper !== null && work !== null) {
    options.push(['upperdir', join(opts.home, upper)], ['workdir', join(opts.home, work)])
    if (opts.volatile === true) options.push(['volatile'])
  }
  return { api: 'new', options }
}

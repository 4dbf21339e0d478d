/**
 * Whiteout conventions. In a layer tar (the aufs convention, which the
 * image formats adopted) a deleted path `x` is an empty file `.wh.x` and a
 * directory whose lower content is hidden holds `.wh..wh..opq`. overlayfs
 * wants a 0/0 character device and the `trusted.overlay.opaque=y` xattr.
 * Converting between the two by hand is the job of this module, apply and
 * export; no library does it.
 */

export const WHITEOUT_PREFIX = '.wh.'
/** Names under the layer root starting with this are aufs bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`). */
export const WHITEOUT_META_PREFIX = '.wh..wh.'
export const WHITEOUT_OPAQUE = '.wh..wh..opq'
export const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque'
/** overlayfs's own attributes: never taken from a tar, never written into one. */
export const OVERLAY_XATTR_PREFIX = 'trusted.overlay.'
/** fuse-overlayfs's own attributes (user.fuseoverlayfs.origin on copied-up files): the same. */
export const FUSE_OVERLAYFS_XATTR_PREFIX = 'user.fuseoverlayfs.'

/**
 * How an applied layer represents deletions on disk:
 * - `full`: the target is a full copy of the parent (vfs, btrfs); a
 *   whiteout deletes, an opaque marker empties the directory of what the
 *   layer did not itself add;
 * - `overlay`: the target is an overlay upper dir; whiteouts become 0/0
 *   character devices, opaque markers the opaque xattr;
 * - `aufs`: everything is written as it is in the tar (aufs reads `.wh.`
 *   files natively).
 */
export type WhiteoutFormat = 'full' | 'overlay' | 'aufs'

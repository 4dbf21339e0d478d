/**
 * The tar vocabulary of strata: one `TarHeader` per file in a layer, after
 * PAX records and GNU long names have been folded into it.
 *
 * A layer tar is a sequence of entries. Some entries are "meta" entries that
 * only describe the next one (PAX `x` headers, GNU `L`/`K` long names); the
 * reader folds them in and never shows them. PAX global headers (`g`) are
 * reported, with type 'globalHeader', because Docker and tar-split count them
 * as entries (dockerd ignores them when applying).
 */
import type { Timespec } from '../../sys/index.js'

export type EntryType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo' | 'globalHeader'

export interface TarHeader {
  /** The name exactly as the archive gives it (not cleaned: "./etc/", "etc/passwd", "/abs"). */
  name: string
  type: EntryType
  /** Permission bits with setuid, setgid and sticky (0o7777). */
  mode: number
  uid: number
  gid: number
  uname: string
  gname: string
  /** Bytes of content that follow the header: 0 for every type but 'file'. */
  size: number
  mtime: Timespec
  atime?: Timespec
  ctime?: Timespec
  /** Target of a symlink, or the archive name a hardlink points to. */
  linkname: string
  devmajor: number
  devminor: number
  /** Extended attributes from `SCHILY.xattr.<name>` records; values are raw bytes. */
  xattrs: Map<string, Buffer>
  /** Every PAX record that applied to this entry (global ones included), as text. */
  pax: Map<string, string>
}

/** What a writer needs; missing fields take neutral defaults (root-owned, mtime 0). */
export type TarHeaderInput = Pick<TarHeader, 'name' | 'type'> & Partial<Omit<TarHeader, 'name' | 'type'>>

export const BLOCK = 512

/**
 * The image snapshot (image-query.ts) kept in memory by a long-lived
 * process (`strata serve`), and read again only when the data root's image
 * files changed, whoever changed them: this process, or a CLI process
 * writing the same root (`strata tag`, `rmi`, `load`).
 *
 * Why: a snapshot reads every image config (and hashes it), every layer's
 * metadata files and repositories.json: ~30 file operations for two
 * images, each a round trip through libuv's thread pool. On a loaded
 * machine every round trip waits for a core, and `GET /images/json` took
 * 20 ms where dockerd, answering from memory, took under 1 ms.
 *
 * What says "changed": a stamp of stat() results (inode, size, mtime and
 * ctime in ns), taken synchronously (a few microseconds each, no thread
 * pool) before every use:
 * - `imagedb/content/sha256/` and `imagedb/metadata/sha256/`: an image
 *   added or removed (every write is a rename into, or an unlink from,
 *   these directories);
 * - each entry of `imagedb/metadata/sha256/`: an image's parent link or
 *   lastUpdated rewritten (temp + rename inside it);
 * - `repositories.json`: replaced by rename on every tag change (a new
 *   inode);
 * - `layerdb/sha256/`: a layer registered or removed.
 * Files are never rewritten in place by strata, so a rename or an unlink
 * always moves one of these stamps. A file damaged in place is not seen
 * until something else changes (dockerd does not re-read its images
 * either); `strata check` reads everything.
 *
 * Timestamps have a coarse clock's granularity: two changes within one
 * tick can leave a directory's mtime as it was between them. So a snapshot
 * whose stamp holds a time within STAMP_SLACK_MS of when it was taken is
 * used for that one request only, never kept: the next request reads again
 * until the root has been still for that long (git's "racy" rule).
 */
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { Store } from './index.js'
import { snapshot, type ImageSnapshot } from './image-query.js'

/** How recent a stamped time may be for a snapshot to be kept (covers timestamp granularity and the coarse clock's lag). */
const STAMP_SLACK_MS = 1_000
const HEX64 = /^[a-f0-9]{64}$/

interface Stamp {
  text: string
  /** The newest mtime or ctime in it, in ms. */
  newestMs: number
}

/** One stat() result as a comparable string, or "-" for a path that does not exist. */
function statStamp(path: string): Stamp {
  const st = statSync(path, { bigint: true, throwIfNoEntry: false })
  if (st === undefined) return { text: '-', newestMs: 0 }
  const newestNs = st.mtimeNs > st.ctimeNs ? st.mtimeNs : st.ctimeNs
  return { text: `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`, newestMs: Number(newestNs / 1_000_000n) }
}

interface Kept {
  /** The image metadata directories the stamp covers (the entries of metadata/sha256/ when it was read). */
  entries: string[]
  stamp: string
  snap: ImageSnapshot
}

export class ImageView {
  readonly #store: Store
  readonly #dirs: string[]
  readonly #metadataDir: string
  #kept: Kept | undefined
  /** A read in flight, shared by requests that arrive meanwhile with the same stamp. */
  #reading: { stamp: string; snap: Promise<ImageSnapshot> } | undefined

  constructor(store: Store) {
    this.#store = store
    this.#metadataDir = join(store.images.dir, 'metadata', 'sha256')
    this.#dirs = [join(store.images.dir, 'content', 'sha256'), this.#metadataDir, store.references.path, store.layers.paths.sha256]
  }

  /** The store's images, layers and references as of now: from memory when nothing changed since they were read. */
  async snapshot(): Promise<ImageSnapshot> {
    const kept = this.#kept
    if (kept !== undefined && this.#stamp(kept.entries).text === kept.stamp) return kept.snap
    this.#kept = undefined
    // The metadata directories are listed before reading, so that the stamp taken before and the one taken after cover the same ones.
    const entries = this.#metadataEntries()
    const before = this.#stamp(entries)
    if (this.#reading !== undefined && this.#reading.stamp === before.text) return this.#reading.snap
    const reading = { stamp: before.text, snap: snapshot(this.#store) }
    this.#reading = reading
    try {
      const snap = await reading.snap
      const after = this.#stamp(entries)
      // Kept only when nothing moved while reading and no stamped time is too recent to trust.
      if (after.text === before.text && Date.now() - after.newestMs > STAMP_SLACK_MS) this.#kept = { entries, stamp: after.text, snap }
      return snap
    } finally {
      if (this.#reading === reading) this.#reading = undefined
    }
  }

  /** Forgets the kept snapshot (the next call reads the store again). */
  invalidate(): void {
    this.#kept = undefined
  }

  #metadataEntries(): string[] {
    try {
      return readdirSync(this.#metadataDir).filter((n) => HEX64.test(n)).sort()
    } catch {
      return []
    }
  }

  /** The stamp of the root's image directories and files, then of each image metadata directory named. */
  #stamp(entries: readonly string[]): Stamp {
    let newestMs = 0
    const parts: string[] = []
    const add = (path: string, label: string): void => {
      const s = statStamp(path)
      parts.push(`${label}=${s.text}`)
      newestMs = Math.max(newestMs, s.newestMs)
    }
    for (const dir of this.#dirs) add(dir, '')
    for (const name of entries) add(join(this.#metadataDir, name), name)
    return { text: parts.join('|'), newestMs }
  }
}

/**
 * The copy routines: images from a source into a store (`loadImages`,
 * `docker load`), from a store to a destination (`saveImages`, `docker
 * save`), and the openers that pick the format of a path or stream.
 *
 * loadImages is all or nothing. It reads and checks everything the source
 * says (every config, manifest and blob's presence) before it registers
 * anything; then registers each image's layers through
 * LayerStore.registerChain (verified against the config's diff_ids,
 * layers already present not read), creates the images and moves the
 * tags. If any step fails, what it did is undone: tags are put back where
 * they pointed, images it created are deleted, and the layer handles it
 * holds are released, which deletes the layers it registered. On success
 * the handles are released too: the images keep their layers from then on.
 *
 * saveImages resolves every name first (NOT_FOUND before anything is
 * written), holds a handle on each image's top layer while it writes (an
 * `rmi` meanwhile cannot pull the layers away), streams each layer from
 * the layer store's export, failing if the export does not verify against
 * its diffID, and aborts the destination on any failure.
 */
import { stat } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { StrataError, isErrno } from '../errors/index.js'
import { imageOperatingSystem, parseImageConfig, parseReference, referenceName, referenceString, validateForCreate, withDefaultTag, type ImageID, type Reference } from '../image/index.js'
import { chainIds } from '../digest/index.js'
import type { LayerHandle } from '../layer/index.js'
import type { Store } from '../store/index.js'
import { DockerArchiveDestination } from './docker-archive/destination.js'
import { MANIFEST_FILE } from './docker-archive/manifest.js'
import { DockerArchiveSource } from './docker-archive/source.js'
import { DirectoryFiles, type ArchiveFiles } from './files.js'
import { INDEX_FILE, LAYOUT_FILE } from './oci-layout/documents.js'
import { OciLayoutDestination } from './oci-layout/destination.js'
import { OciLayoutSource } from './oci-layout/source.js'
import { spoolTar } from './spool.js'
import { TarIndex } from './tar-index.js'
import type {
  DestinationImage,
  DestinationOptions,
  ImageDestination,
  ImageSource,
  LoadOptions,
  LoadResult,
  LoadedImage,
  SaveOptions,
  SourceImage,
  SourceLayer,
  TransportFormat,
} from './types.js'
import { openVerifiedLayer } from './verified-export.js'

export interface OpenSourceOptions {
  /** The format; default: told from the contents (manifest.json: docker-archive; oci-layout + index.json: OCI). */
  format?: TransportFormat
  /** Where a stream or a compressed archive is spooled; default os.tmpdir(). The CLI passes `<root>/tmp`. */
  tmpDir?: string
}

/** Which format `files` hold, by the files only each format has. */
async function detectFormat(files: ArchiveFiles): Promise<TransportFormat> {
  // docker 25+ writes both; manifest.json is what docker 20.10 reads, and it has the names.
  if ((await files.stat(MANIFEST_FILE, 'Manifest')) !== undefined) return 'docker-archive'
  if ((await files.stat(LAYOUT_FILE, 'OCI layout file')) !== undefined && (await files.stat(INDEX_FILE, 'OCI index')) !== undefined) {
    return files.isTar ? 'oci-archive' : 'oci-layout'
  }
  throw new StrataError('INVALID_ARGUMENT', `The ${files.description} is not an image archive: it has neither ${MANIFEST_FILE} (docker-archive) nor ${LAYOUT_FILE} and ${INDEX_FILE} (OCI layout)`)
}

/**
 * Opens an image source: a docker-archive or OCI archive file (plain,
 * gzip'd or zstd'd), an OCI layout directory, or a stream of an archive
 * (stdin), which is spooled to a temp file first. Close it when done.
 * @example
 * const source = await openImageSource('busybox.tar')
 * try { await loadImages(store, source) } finally { await source.close() }
 */
export async function openImageSource(input: string | Readable, opts: OpenSourceOptions = {}): Promise<ImageSource> {
  let files: ArchiveFiles
  if (typeof input === 'string') {
    let isDir: boolean
    try {
      isDir = (await stat(input)).isDirectory()
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) throw new StrataError('NOT_FOUND', `Image source "${input}" does not exist`, { cause: err })
      throw err
    }
    files = isDir ? new DirectoryFiles(input) : await indexArchive(input, opts, `archive "${input}"`)
  } else {
    files = await indexArchive(input, opts, 'archive read from the input stream')
  }
  try {
    const format = opts.format ?? (await detectFormat(files))
    if (format === 'docker-archive') return new DockerArchiveSource(files)
    return new OciLayoutSource(files, files.isTar ? 'oci-archive' : 'oci-layout')
  } catch (err) {
    await files.close().catch(() => {})
    throw err
  }
}

async function indexArchive(input: string | Readable, opts: OpenSourceOptions, description: string): Promise<TarIndex> {
  const spool = await spoolTar(input, opts.tmpDir === undefined ? {} : { tmpDir: opts.tmpDir })
  try {
    return await TarIndex.open(spool.path, { description, onClose: () => spool.close() })
  } catch (err) {
    await spool.close().catch(() => {})
    throw err
  }
}

/**
 * A destination of `format` at `path`: a docker-archive or oci-archive
 * file, or an OCI layout directory. Nothing appears at `path` before commit().
 */
export function openImageDestination(path: string, format: TransportFormat, opts: DestinationOptions = {}): ImageDestination {
  switch (format) {
    case 'docker-archive':
      if (opts.compression !== undefined && opts.compression !== 'none') {
        throw new StrataError('INVALID_ARGUMENT', `A docker-archive holds uncompressed layers (as docker save writes them); compression "${opts.compression}" is for OCI`)
      }
      return new DockerArchiveDestination(path)
    case 'oci-layout':
    case 'oci-archive':
      return new OciLayoutDestination(path, format, opts)
    default:
      throw new StrataError('INVALID_ARGUMENT', `Unknown image format "${String(format)}": expected docker-archive, oci-layout or oci-archive`)
  }
}

// ---------------------------------------------------------------------------
// load

/**
 * The reference a source's name stands for, or undefined for a name that
 * names no repository: an OCI ref.name that is a bare tag (`latest`,
 * `1.0`: it has neither `/` nor `:`), a digest reference (docker load
 * does not tag those), or something that does not parse.
 */
export function loadableReference(name: string): Reference | undefined {
  if (!/[/:]/.test(name)) return undefined
  let ref: Reference
  try {
    ref = parseReference(name)
  } catch {
    return undefined
  }
  if (ref.digest !== undefined) return undefined
  return withDefaultTag(ref)
}

/** A StrataError with `context` in front of the message, same code. */
function withContext(err: unknown, context: string): unknown {
  if (!(err instanceof StrataError)) return err
  return new StrataError(err.code, `${context}: ${err.message}`, {
    cause: err,
    details: err.details,
    ...(err.hint === undefined ? {} : { hint: err.hint }),
  })
}

function imageLabel(image: SourceImage, index: number): string {
  const name = image.names.find((n) => loadableReference(n) !== undefined)
  return `image ${index + 1} (${image.id.slice(7, 19)}${name === undefined ? '' : ` ${name}`})`
}

/** What a load did, to be undone on failure. */
interface LoadJournal {
  handles: LayerHandle[]
  createdImages: ImageID[]
  /** Tags moved: the reference and the image it pointed to before (undefined: it did not exist). */
  tags: Array<{ ref: Reference; previous: ImageID | undefined }>
}

async function undoLoad(store: Store, journal: LoadJournal): Promise<void> {
  for (const { ref, previous } of journal.tags.reverse()) {
    if (previous === undefined) await store.references.delete(ref).catch(() => {})
    else await store.references.addTag(ref, previous, { force: true }).catch(() => {})
  }
  for (const id of journal.createdImages.reverse()) await store.images.delete(id).catch(() => {})
  for (const h of journal.handles.reverse()) await h.release().catch(() => {})
}

/**
 * Parents, as dockerd's load links them: only to an image of the same
 * source (validatedParentLinks), whose layers begin the child's
 * (checkValidParent; CORRUPT otherwise).
 */
async function linkParents(store: Store, plans: ReadonlyArray<{ image: SourceImage; label: string }>, loaded: readonly LoadedImage[]): Promise<void> {
  for (const [i, { image, label }] of plans.entries()) {
    const parent = image.parent
    if (parent === undefined || parent === loaded[i]!.id || !plans.some((p) => p.image.id === parent)) continue
    const own = image.layers.map((l) => l.diffId)
    const theirs = plans.find((p) => p.image.id === parent)!.image.layers.map((l) => l.diffId)
    if (theirs.length > own.length || theirs.some((d, j) => own[j] !== d)) {
      throw new StrataError('CORRUPT', `Cannot load ${label}: image ${parent} is not a valid parent for ${loaded[i]!.id}`)
    }
    await store.images.setParent(loaded[i]!.id, parent)
  }
}

/**
 * Loads every image of `source` into `store` (see the file comment for
 * the guarantees), tagging each with the source's names, moving a tag
 * that pointed elsewhere as docker load does.
 */
export async function loadImages(store: Store, source: ImageSource, opts: LoadOptions = {}): Promise<LoadResult> {
  const progress = opts.onProgress
  const plans: LoadPlan[] = []
  // As dockerd: images up to the first refused name load; those after it are not even looked at.
  for (const [i, image] of (await source.images()).entries()) {
    const plan = planLoad(image, i)
    plans.push(plan)
    if (plan.refused !== undefined) break
  }
  for (const [i, { image }] of plans.entries()) {
    image.layers.forEach((l, j) => progress?.({ image: i, layer: j, diffId: l.diffId, phase: 'waiting', current: 0, ...(l.size === undefined ? {} : { total: l.size }) }))
  }
  const journal: LoadJournal = { handles: [], createdImages: [], tags: [] }
  let loaded: LoadedImage[]
  try {
    const counts = await registerLayers(store, plans, journal, progress)
    loaded = await createImagesAndTags(store, plans, counts, journal)
    await linkParents(store, plans, loaded)
  } catch (err) {
    await undoLoad(store, journal)
    throw err
  }
  // The images refer to their layers on disk now; the handles only kept them alive until then.
  for (const h of journal.handles) await h.release()
  const last = plans.at(-1)
  if (last?.refused !== undefined) return { images: loaded, refused: { image: last.image.id, ...last.refused } }
  return { images: loaded }
}

/** Why dockerd 20.10's load refuses `name` as a RepoTags entry (its words), or undefined when it takes it. */
function refusedName(name: string): string | undefined {
  let ref: Reference
  try {
    ref = parseReference(name)
  } catch (err) {
    // parseReference says `Invalid reference "NAME": <distribution/reference's error>`; dockerd prints the latter alone.
    const m = /^Invalid reference "[\s\S]*": ([^"]*)$/.exec((err as Error).message)
    return m?.[1] ?? (err as Error).message
  }
  if (ref.tag === undefined) return `invalid tag ${goQuote(name)}`
  return undefined
}

/** Go's %q for the printable ASCII names a RepoTags entry holds (others escaped as \u). */
function goQuote(s: string): string {
  return JSON.stringify(s)
}

/** One image of a load: what it is called in messages and the names it will be tagged with. */
interface LoadPlan {
  image: SourceImage
  label: string
  tagged: Reference[]
  skippedNames: string[]
  /** The first name dockerd would refuse (strictNames), and why. */
  refused?: { name: string; message: string }
}

interface LayerCounts {
  created: number
  existing: number
}

/** 1. Check everything before changing anything: a config this host can create, layers that match its diff_ids, the names to tag. */
function planLoad(image: SourceImage, i: number): LoadPlan {
  const label = imageLabel(image, i)
  try {
    const { config } = parseImageConfig(image.configBytes)
    validateForCreate(config)
    const os = imageOperatingSystem(config)
    if (os.toLowerCase() !== process.platform) {
      throw new StrataError('NOT_SUPPORTED', `its config is for operating system "${os}", which this host (${process.platform}) cannot run`)
    }
    if (config.rootfs.diff_ids.join() !== image.layers.map((l) => l.diffId).join()) {
      throw new StrataError('CORRUPT', 'its layers do not match the diff_ids of its config')
    }
  } catch (err) {
    throw withContext(err, `Cannot load ${label}`)
  }
  const tagged: Reference[] = []
  const skippedNames: string[] = []
  for (const name of image.names) {
    if (image.strictNames === true) {
      // dockerd 20.10's load: ParseNormalizedNamed, then a NamedTagged, else the load stops here.
      const why = refusedName(name)
      if (why !== undefined) return { image, label, tagged, skippedNames, refused: { name, message: why } }
    }
    const ref = loadableReference(name)
    if (ref === undefined) skippedNames.push(name)
    else if (!tagged.some((t) => referenceString(t) === referenceString(ref))) tagged.push(ref)
  }
  return { image, label, tagged, skippedNames }
}

/** 2. Layers, image by image (a layer an earlier image registered is found, not read again); their handles go in the journal. */
async function registerLayers(store: Store, plans: LoadPlan[], journal: LoadJournal, progress: LoadOptions['onProgress']): Promise<LayerCounts[]> {
  const counts: LayerCounts[] = []
  for (const [i, { image, label }] of plans.entries()) {
    const count = { created: 0, existing: 0 }
    counts.push(count)
    if (image.layers.length === 0) continue
    let results
    try {
      results = await store.layers.registerChain(
        image.layers.map((l, j) => ({
          open: progress === undefined ? () => l.open() : () => openReporting(l, (phase, current) => progress({ image: i, layer: j, diffId: l.diffId, phase, current, ...(l.size === undefined ? {} : { total: l.size }) })),
          expectedDiffId: l.diffId,
          // A source that names a compressed blob's digest verifies it as the blob streams
          // (SourceLayer.digest): hashed there, not again in the apply. An uncompressed blob's
          // digest is its diffID, which the apply itself checks (and the OCI source leaves to it).
          ...(l.digest === undefined || l.digest === l.diffId ? {} : { sourceDigest: l.digest }),
          ...(l.size === undefined ? {} : { size: l.size }),
          ...(progress === undefined
            ? {}
            : { onProgress: (n: number) => progress({ image: i, layer: j, diffId: l.diffId, phase: 'copying', current: n, ...(l.size === undefined ? {} : { total: l.size }) }) }),
        })),
        null,
        {
          onLayer: (j, r) => {
            const l = image.layers[j]!
            if (r.sourceRead) progress?.({ image: i, layer: j, diffId: l.diffId, phase: 'done', current: r.compressedSize, total: r.compressedSize })
            else progress?.({ image: i, layer: j, diffId: l.diffId, phase: 'exists', current: 0 })
          },
        },
      )
    } catch (err) {
      throw withContext(err, `Cannot load ${label}`)
    }
    for (const r of results) {
      journal.handles.push(r.layer)
      if (r.created) count.created++
      else count.existing++
    }
  }
  return counts
}

/**
 * Opens `l`, reporting it: copying from 0 when it is opened (it got a
 * slot: the layer store opens a source when its apply starts), and
 * verified once its stream has ended cleanly when the source names a
 * digest: such a source errors at the end instead when the bytes do not
 * hash to it (SourceLayer.open), so a clean end is the checked digest.
 */
async function openReporting(l: SourceLayer, report: (phase: 'copying' | 'verified', current: number) => void): Promise<Readable> {
  report('copying', 0)
  const stream = await l.open()
  if (l.digest !== undefined) stream.once('end', () => report('verified', l.size ?? 0))
  return stream
}

/** 3. Images, then their tags (a tag that pointed elsewhere moves, as docker load does); what changed goes in the journal. */
async function createImagesAndTags(store: Store, plans: LoadPlan[], counts: LayerCounts[], journal: LoadJournal): Promise<LoadedImage[]> {
  const loaded: LoadedImage[] = []
  for (const [i, { image, label, tagged, skippedNames }] of plans.entries()) {
    let id: ImageID
    try {
      const created = await store.images.create(image.configBytes)
      id = created.id
      if (created.created) journal.createdImages.push(id)
      for (const ref of tagged) {
        const previous = await store.references.get(ref)
        if (previous === id) continue
        await store.references.addTag(ref, id, { force: true })
        journal.tags.push({ ref, previous })
      }
    } catch (err) {
      throw withContext(err, `Cannot load ${label}`)
    }
    loaded.push({ id, tagged: tagged.map(referenceString), skippedNames, layersCreated: counts[i]!.created, layersExisting: counts[i]!.existing })
  }
  return loaded
}

// ---------------------------------------------------------------------------
// save

interface SaveTarget {
  id: ImageID
  references: Reference[]
}

/** A reference-looking name (not an image ID): what docker records in RepoTags. */
async function resolveSaveNames(store: Store, names: readonly string[]): Promise<SaveTarget[]> {
  const targets: SaveTarget[] = []
  const add = (id: ImageID, ref: Reference | undefined): void => {
    let t = targets.find((x) => x.id === id)
    if (t === undefined) {
      t = { id, references: [] }
      targets.push(t)
    }
    if (ref !== undefined && !t.references.some((r) => referenceString(r) === referenceString(ref))) t.references.push(ref)
  }
  for (const name of names) {
    let ref: Reference | undefined
    try {
      ref = parseReference(name)
    } catch {
      ref = undefined
    }
    if (ref !== undefined) {
      const byRef = await store.references.get(ref)
      if (byRef !== undefined) {
        // Saved by digest: docker records no tag for it.
        add(byRef, ref.digest === undefined ? withDefaultTag(ref) : undefined)
        continue
      }
      if (ref.tag === undefined && ref.digest === undefined) {
        // A name alone: every tag of that repository, as docker save does.
        const repo = referenceName(ref)
        const all = (await store.references.all()).filter((e) => referenceName(e.ref) === repo && e.ref.tag !== undefined && e.ref.digest === undefined)
        if (all.length > 0) {
          for (const e of all) add(e.id, e.ref)
          continue
        }
      }
    }
    add(await store.findImage(name), undefined)
  }
  return targets
}

/**
 * Writes the images `names` name (image IDs, short IDs, references; a
 * repository name alone means all its tags) to `destination` and commits
 * it; aborts it on any failure.
 * @example
 * await saveImages(store, ['busybox:latest'], openImageDestination('busybox.tar', 'docker-archive'))
 */
export async function saveImages(store: Store, names: string[], destination: ImageDestination, opts: SaveOptions = {}): Promise<void> {
  const handles: LayerHandle[] = []
  try {
    if (names.length === 0) throw new StrataError('INVALID_ARGUMENT', 'No images to save were named')
    const targets = await resolveSaveNames(store, names)
    const images: DestinationImage[] = []
    for (const t of targets) {
      const image = await store.images.get(t.id)
      const diffIds = image.config.rootfs.diff_ids
      const chains = chainIds(diffIds)
      if (chains.length > 0) {
        try {
          handles.push(await store.layers.get(chains[chains.length - 1]!))
        } catch (err) {
          throw withContext(err, `Cannot save image ${t.id}`)
        }
      }
      const parent = await store.images.getParent(t.id)
      images.push({
        id: t.id,
        configBytes: image.raw,
        layers: diffIds.map((diffId, j) => ({ diffId, open: () => openVerifiedLayer(store, chains[j]!, diffId), planFileWrite: () => store.layers.planFileExport(chains[j]!) })),
        references: t.references.map(referenceString),
        ...(parent !== undefined && targets.some((o) => o.id === parent) ? { parent } : {}),
      })
    }
    await destination.write(images, opts.onProgress)
    await destination.commit()
  } catch (err) {
    await destination.abort().catch(() => {})
    throw err
  } finally {
    for (const h of handles) await h.release().catch(() => {})
  }
}

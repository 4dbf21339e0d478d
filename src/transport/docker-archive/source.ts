/**
 * Reading a docker-archive (`docker save`, `podman save`, `skopeo copy ...
 * docker-archive:`) in place: manifest.json says which config and which
 * layer files make each image; each config is read and checked (its bytes
 * hash to its file name when that name is `<hex>.json` or `<hex>`; it lists
 * one diff_id per layer), each layer file must be a regular file inside the
 * archive. Layers are streamed from their offsets as stored, gzip'd or
 * not (the layer store detects that); their diffIDs are what the layer
 * store verifies them against.
 */
import type { Readable } from 'node:stream'
import { isDigest, parseDigest, type Digest } from '../../digest/index.js'
import type { ImageID } from '../../image/index.js'
import { StrataError } from '../../errors/index.js'
import { MAX_JSON_BYTES, parseJsonDocument } from '../blob-stream.js'
import { readArchiveFile, requireFile, type ArchiveFiles } from '../files.js'
import { basenameOf, cleanArchiveName } from '../names.js'
import { checkSourceConfig } from '../source-config.js'
import { MediaTypes, type ImageSource, type SourceImage, type SourceLayer, type TransportFormat } from '../types.js'
import { MANIFEST_FILE, REPOSITORIES_FILE, parseDockerManifest } from './manifest.js'

/** A config file named by its digest: `<hex>.json` (docker, podman) or `blobs/sha256/<hex>` (docker 25+). */
function digestFromConfigName(name: string): Digest | undefined {
  const m = /^([a-f0-9]{64})(\.json)?$/.exec(basenameOf(name))
  return m === null ? undefined : parseDigest(m[1]!)
}

export class DockerArchiveSource implements ImageSource {
  readonly format: TransportFormat = 'docker-archive'
  readonly #files: ArchiveFiles
  #images: Promise<SourceImage[]> | undefined
  #closed = false

  /** Reads through `files`, which the source owns from now on (close() closes them). */
  constructor(files: ArchiveFiles) {
    this.#files = files
  }

  images(): Promise<SourceImage[]> {
    this.#images ??= this.#read()
    return this.#images
  }

  async #read(): Promise<SourceImage[]> {
    const files = this.#files
    const where = files.description
    if ((await files.stat(MANIFEST_FILE, 'Manifest')) === undefined) {
      const legacy = (await files.stat(REPOSITORIES_FILE, 'Legacy repositories file')) !== undefined
      throw new StrataError(
        legacy ? 'NOT_SUPPORTED' : 'CORRUPT',
        legacy
          ? `The ${where} is a legacy (pre-1.10) docker archive without ${MANIFEST_FILE}, which strata cannot load`
          : `The ${where} is not a docker-archive: it has no ${MANIFEST_FILE}`,
      )
    }
    const manifest = parseDockerManifest(parseJsonDocument(await readArchiveFile(files, MANIFEST_FILE, 'Manifest', MAX_JSON_BYTES), `${MANIFEST_FILE} in the ${where}`), where)
    const images: SourceImage[] = []
    for (const [i, item] of manifest.entries()) {
      const configName = cleanArchiveName(item.Config, 'Config file')
      const origin = `"${item.Config}" in the ${where}`
      const configBytes = await readArchiveFile(files, configName, 'Config file', MAX_JSON_BYTES)
      const { id, config } = checkSourceConfig(configBytes, origin, digestFromConfigName(configName), item.Layers.length)
      const layers: SourceLayer[] = []
      for (const [j, layerName] of item.Layers.entries()) {
        const what = `Layer file`
        const name = cleanArchiveName(layerName, what)
        const diffId = config.rootfs.diff_ids[j]!
        if (item.LayerSources?.[diffId] !== undefined && (await files.stat(name, what)) === undefined) {
          throw new StrataError('NOT_SUPPORTED', `Layer ${j + 1} of image ${i + 1} in the ${where} is a foreign layer (${diffId}) the archive does not hold; strata does not download foreign layers`)
        }
        const file = await requireFile(files, name, what)
        layers.push({
          diffId,
          size: file.size,
          mediaType: MediaTypes.dockerLayerTar,
          open: (): Promise<Readable> => files.open(name, what),
        })
      }
      // Names come from RepoTags only: dockerd 20.10 ignores the legacy
      // `repositories` file when manifest.json exists (an image saved by ID
      // loads untagged, "Loaded image ID: ...", even if the file names it).
      const names = item.RepoTags ?? []
      const parent = item.Parent !== undefined && isDigest(item.Parent) ? (item.Parent as ImageID) : undefined
      images.push({ id, configBytes, layers, names, strictNames: true, ...(parent === undefined ? {} : { parent }) })
    }
    return images
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#files.close()
  }
}

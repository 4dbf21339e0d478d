/**
 * Writing a docker-archive the way dockerd 20.10's `docker save` writes it
 * (image/tarexport/save.go), so that `docker load`, podman and skopeo read
 * it as one of docker's:
 *
 *   <v1id>/VERSION        "1.0"
 *   <v1id>/json           the legacy V1Image (v1.ts)
 *   <v1id>/layer.tar      the layer, uncompressed, byte-exact with its diffID;
 *                         a symlink to ../<other v1id>/layer.tar when a layer
 *                         with the same diffID was written already
 *   <config hex>.json     the config, exact bytes
 *   manifest.json         [{"Config","RepoTags","Layers","Parent"?}], Go's encoder (newline-terminated)
 *   repositories          {"<familiar name>":{"<tag>":"<top v1id>"}}, only when something is tagged
 *
 * Layers below an image's top have v1 IDs that depend only on their chain,
 * so a base shared by several images is one directory; the same layer
 * bytes are never written twice. Times are dockerd's: each layer
 * directory and config at the image's `created`, manifest.json and
 * repositories at the epoch. The archive is written to `.tmp-<dest><random>`
 * beside the destination (src/fs temp.ts) and renamed over it on commit();
 * abort() removes it.
 */
import { rename, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'
import { chainIds, digestHex, type Digest } from '../../digest/index.js'
import { StrataError } from '../../errors/index.js'
import { fsyncPath, goJsonString, refuseSpecialTarget, tempPathFor } from '../../fs/index.js'
import { familiarName, familiarString, parseImageConfig, parseReference } from '../../image/index.js'
import { goJsonSortedObject } from '../go-config.js'
import { TarFileWriter } from '../tar-file-writer.js'
import type { DestinationImage, ImageDestination, ProgressListener, TransportFormat } from '../types.js'
import { MANIFEST_FILE, REPOSITORIES_FILE } from './manifest.js'
import { v1Layer } from './v1.js'

const LAYER_FILE = 'layer.tar'

/** Seconds since the epoch of an RFC 3339 time, or 0 when there is none. */
function epochSeconds(created: unknown): number {
  if (typeof created !== 'string') return 0
  const ms = Date.parse(created)
  return Number.isNaN(ms) ? 0 : Math.floor(ms / 1000)
}

/** The tags a docker-archive records for `references` (familiar `name:tag`; digests have no place there). */
export function repoTagsOf(references: readonly string[]): Array<{ name: string; tag: string; repoTag: string }> {
  const out: Array<{ name: string; tag: string; repoTag: string }> = []
  for (const r of references) {
    const ref = parseReference(r)
    if (ref.tag === undefined) continue
    const tagged = { domain: ref.domain, path: ref.path, tag: ref.tag }
    const repoTag = familiarString(tagged)
    if (!out.some((o) => o.repoTag === repoTag)) out.push({ name: familiarName(tagged), tag: ref.tag, repoTag })
  }
  return out
}

export class DockerArchiveDestination implements ImageDestination {
  readonly format: TransportFormat = 'docker-archive'
  readonly path: string
  readonly #tmpPath: string
  #writer: TarFileWriter | undefined
  #written = false

  constructor(path: string) {
    this.path = path
    this.#tmpPath = tempPathFor(path)
  }

  async write(images: DestinationImage[], progress?: ProgressListener): Promise<void> {
    if (this.#writer !== undefined) throw new StrataError('INVALID_ARGUMENT', `write() was called twice on the docker-archive destination "${this.path}"`)
    // Everything that can be refused is refused before the archive is started.
    for (const image of images) {
      const { config } = parseImageConfig(image.configBytes)
      if (image.layers.map((l) => l.diffId).join() !== config.rootfs.diff_ids.join()) {
        throw new StrataError('INVALID_ARGUMENT', `Image ${image.id}: its layers do not match its config's diff_ids`)
      }
      if (image.layers.length === 0) throw new StrataError('NOT_SUPPORTED', `Image ${image.id} has no layers; a docker-archive cannot hold it (docker: "empty export - not implemented")`)
      for (const r of image.references) parseReference(r)
    }
    const writer = await TarFileWriter.create(this.#tmpPath)
    this.#writer = writer
    for (const [i, image] of images.entries()) {
      image.layers.forEach((l, j) => progress?.({ image: i, layer: j, diffId: l.diffId, phase: 'waiting', current: 0, ...(l.size === undefined ? {} : { total: l.size }) }))
    }

    const savedDirs = new Set<string>()
    const layerPathByDiffId = new Map<Digest, string>()
    const manifest: string[] = []
    const repositories = new Map<string, Map<string, string>>()
    const written = new Set<string>()

    for (const [i, image] of images.entries()) {
      const { config } = parseImageConfig(image.configBytes)
      const raw = JSON.parse(image.configBytes.toString('utf8')) as Record<string, unknown>
      const mtime = epochSeconds(config.created)
      const chains = chainIds(image.layers.map((l) => l.diffId))
      const layerPaths: string[] = []
      let parent: string | undefined
      for (const [j, layer] of image.layers.entries()) {
        const v1 = v1Layer(raw, chains[j]!, parent, j === image.layers.length - 1)
        parent = v1.id
        const layerPath = `${v1.id}/${LAYER_FILE}`
        layerPaths.push(layerPath)
        const event = { image: i, layer: j, diffId: layer.diffId }
        if (savedDirs.has(v1.id)) {
          progress?.({ ...event, phase: 'exists', current: 0 })
          continue
        }
        savedDirs.add(v1.id)
        await writer.addDirectory(v1.id, { mtime })
        await writer.addFile(`${v1.id}/VERSION`, Buffer.from('1.0'), { mtime })
        await writer.addFile(`${v1.id}/json`, v1.json, { mtime })
        const earlier = layerPathByDiffId.get(layer.diffId)
        if (earlier !== undefined) {
          // docker save's way of not writing the same bytes twice.
          await writer.addSymlink(layerPath, `../${earlier}`, { mtime })
          progress?.({ ...event, phase: 'exists', current: 0 })
          continue
        }
        const total = layer.size
        const withTotal = total === undefined ? {} : { total }
        progress?.({ ...event, phase: 'copying', current: 0, ...withTotal })
        const onBytes = (n: number): void => progress?.({ ...event, phase: 'copying', current: n, ...withTotal })
        const planned = await layer.planFileWrite?.()
        let size: number
        if (planned !== undefined) {
          // The size is known first: header, then the tar rebuilt straight into the file.
          try {
            const at = await writer.reserve(layerPath, planned.size, { mtime })
            await planned.writeAt(at.fd, at.position, onBytes)
            size = planned.size
          } finally {
            await planned.release()
          }
        } else {
          size = (await writer.addStream(layerPath, await layer.open(), { mtime, onBytes })).size
        }
        progress?.({ ...event, phase: 'done', current: size, total: size })
        layerPathByDiffId.set(layer.diffId, layerPath)
      }

      const configName = `${digestHex(image.id)}.json`
      if (!written.has(configName)) {
        await writer.addFile(configName, image.configBytes, { mtime })
        written.add(configName)
      }
      const tags = repoTagsOf(image.references)
      for (const t of tags) {
        const repo = repositories.get(t.name) ?? new Map<string, string>()
        repo.set(t.tag, parent!)
        repositories.set(t.name, repo)
      }
      // manifestItem in Go's field order: Config, RepoTags, Layers, Parent (omitempty).
      let item = `{"Config":${goJsonString(configName)},"RepoTags":${tags.length === 0 ? 'null' : `[${tags.map((t) => goJsonString(t.repoTag)).join(',')}]`},"Layers":[${layerPaths.map(goJsonString).join(',')}]`
      if (image.parent !== undefined && images.some((o) => o.id === image.parent)) item += `,"Parent":${goJsonString(image.parent)}`
      manifest.push(`${item}}`)
    }

    if (repositories.size > 0) {
      const repos: Record<string, string> = {}
      for (const [name, tags] of repositories) {
        const t: Record<string, string> = {}
        for (const [tag, id] of tags) t[tag] = goJsonString(id)
        repos[name] = goJsonSortedObject(t)
      }
      await writer.addFile(REPOSITORIES_FILE, Buffer.from(`${goJsonSortedObject(repos)}\n`))
    }
    await writer.addFile(MANIFEST_FILE, Buffer.from(`[${manifest.join(',')}]\n`))
    await writer.finish()
    this.#written = true
  }

  async commit(): Promise<void> {
    if (!this.#written) throw new StrataError('INVALID_ARGUMENT', `Nothing was written to the docker-archive destination "${this.path}"`)
    await refuseSpecialTarget(this.path, 'a docker-archive')
    await rename(this.#tmpPath, this.path)
    await fsyncPath(dirname(this.path))
  }

  async abort(): Promise<void> {
    if (this.#writer !== undefined) await this.#writer.abort()
    else await unlink(this.#tmpPath).catch(() => {})
  }
}

/**
 * manifest.json of a docker-archive (moby image/tarexport): a JSON array
 * with one item per image,
 *
 *   [{"Config":"<hex>.json","RepoTags":["busybox:latest"],
 *     "Layers":["<v1id>/layer.tar",...],"Parent":"sha256:...",
 *     "LayerSources":{"<diffID>":{descriptor}}}]
 *
 * `docker save` (20.10) names layers `<v1id>/layer.tar`, podman and skopeo
 * `<hex>.tar`, docker 25+ `blobs/sha256/<hex>`; any name inside the archive
 * is accepted. `RepoTags` is null for an image saved by ID. The legacy
 * `repositories` file ({"busybox":{"latest":"<top v1id>"}}) is written for
 * older readers but not read: dockerd 20.10 ignores it when manifest.json
 * exists.
 */
import { StrataError } from '../../errors/index.js'

export const MANIFEST_FILE = 'manifest.json'
export const REPOSITORIES_FILE = 'repositories'

export interface DockerManifestItem {
  Config: string
  RepoTags: string[] | null
  Layers: string[]
  Parent?: string
  LayerSources?: Record<string, unknown>
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Validates the shape of a parsed manifest.json; CORRUPT naming the field otherwise. */
export function parseDockerManifest(value: unknown, where: string): DockerManifestItem[] {
  const fail = (why: string): never => {
    throw new StrataError('CORRUPT', `${MANIFEST_FILE} in the ${where} is invalid: ${why}`)
  }
  if (!Array.isArray(value)) return fail('not a JSON array')
  if (value.length === 0) return fail('it lists no images')
  return value.map((item: unknown, i): DockerManifestItem => {
    if (!isObject(item)) return fail(`item ${i} is not an object`)
    if (typeof item.Config !== 'string' || item.Config === '') return fail(`item ${i} has no "Config" file name`)
    const tags = item.RepoTags ?? null
    if (tags !== null && (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string'))) return fail(`"RepoTags" of item ${i} is not a list of strings`)
    if (!Array.isArray(item.Layers) || item.Layers.some((l) => typeof l !== 'string' || l === '')) return fail(`"Layers" of item ${i} is not a list of file names`)
    const out: DockerManifestItem = { Config: item.Config, RepoTags: tags as string[] | null, Layers: item.Layers as string[] }
    if (typeof item.Parent === 'string' && item.Parent !== '') out.Parent = item.Parent
    if (isObject(item.LayerSources)) out.LayerSources = item.LayerSources
    return out
  })
}

/** The legacy `repositories` file: repository → tag → top layer's v1 ID; undefined when it is not that shape. */
export function parseRepositories(value: unknown): Map<string, Map<string, string>> | undefined {
  if (!isObject(value)) return undefined
  const out = new Map<string, Map<string, string>>()
  for (const [repo, tags] of Object.entries(value)) {
    if (!isObject(tags)) continue
    const m = new Map<string, string>()
    for (const [tag, id] of Object.entries(tags)) if (typeof id === 'string') m.set(tag, id)
    out.set(repo, m)
  }
  return out
}

/**
 * The legacy (v1) part of a docker-archive: the `<v1id>/` directory each
 * layer gets and the `json` inside it, computed as dockerd 20.10's
 * `docker save` computes them (image/tarexport/save.go, image/v1 CreateID),
 * so that strata's archives name their layers as docker's do.
 *
 * A layer's v1 ID is the sha256 of a JSON object with sorted keys: the
 * fields of a V1Image plus `layer_id` (the layer's chainID) and `parent`
 * (the v1 ID, as a digest, of the layer below, when there is one). For
 * every layer but the top one the V1Image is empty except for `created`
 * (the Unix epoch), so a base layer shared by two images gets the same v1
 * ID and is written once. The top layer's V1Image is the image's own
 * (comment, created, container, container_config, config, ...), so it is
 * unique to the image. dockerd's `json` file is the same V1Image with `id`,
 * `parent` (hex) and the image's `os` set.
 *
 * Nothing reads these back (docker load, podman and skopeo go by
 * manifest.json); they are kept exact so the archives look like docker's.
 */
import { sha256Of, type Digest } from '../../digest/index.js'
import { goJsonString } from '../../fs/index.js'
import { goJsonSortedObject, objectFromPairs, v1ImageFields } from '../go-config.js'

/** `created` of every layer but the top: time.Unix(0, 0) in dockerd's (UTC) zone. */
const EPOCH = '1970-01-01T00:00:00Z'

export interface V1Layer {
  /** 64 hex: the layer's directory name in the archive. */
  id: string
  /** The `json` file's bytes. */
  json: Buffer
}

/**
 * The v1 directory of layer `index` of an image.
 * @param config the image config (parsed)
 * @param chainId the chainID of the layers up to and including this one
 * @param parentId the v1 ID (hex) of the layer below, or undefined for the base layer
 * @param isTop whether this is the image's top layer
 */
export function v1Layer(config: Record<string, unknown>, chainId: Digest, parentId: string | undefined, isTop: boolean): V1Layer {
  const base: Record<string, unknown> = isTop ? config : { created: EPOCH }
  // CreateID: the V1Image without its ID, as a map, plus layer_id and parent (a digest).
  const idFields: Record<string, string> = {}
  for (const [k, v] of v1ImageFields(base, { id: null })) idFields[k] = v
  idFields.layer_id = goJsonString(chainId)
  if (parentId !== undefined) idFields.parent = goJsonString(`sha256:${parentId}`)
  const id = sha256Of(goJsonSortedObject(idFields)).slice('sha256:'.length)

  // The json file: id and parent (hex) set, and the image's os (set after the ID was computed).
  const os = typeof config.os === 'string' && config.os !== '' ? goJsonString(config.os) : null
  const overrides: Parameters<typeof v1ImageFields>[1] = { id: goJsonString(id), os }
  if (parentId !== undefined) overrides.parent = goJsonString(parentId)
  const json = objectFromPairs(v1ImageFields(base, overrides))
  return { id, json: Buffer.from(json) }
}

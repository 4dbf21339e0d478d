/**
 * The checks every source makes on an image's config before it offers the
 * image: the bytes parse as an image config (CORRUPT, naming where they
 * came from), hash to the digest the source names them by when it names
 * one (DIGEST_MISMATCH), and list exactly as many diff_ids as the source
 * has layers (CORRUPT): otherwise layer i would be checked against the
 * wrong diffID, or a layer would be loaded that no config accounts for.
 */
import { sha256Of, type Digest } from '../digest/index.js'
import { StrataError } from '../errors/index.js'
import { parseImageConfig, type ImageConfig } from '../image/index.js'

export interface CheckedConfig {
  id: Digest
  config: ImageConfig
}

/**
 * @param origin where the config is, for messages (`"abc.json" in archive "/x.tar"`)
 * @param expected the digest the source names the config by, when it names one
 * @param layerCount how many layers the source lists for the image
 */
export function checkSourceConfig(bytes: Buffer, origin: string, expected: Digest | undefined, layerCount: number): CheckedConfig {
  const id = sha256Of(bytes)
  if (expected !== undefined && id !== expected) {
    throw new StrataError('DIGEST_MISMATCH', `Image config ${origin} hashes to ${id}, not to ${expected} as its name says`, {
      details: { expected, actual: id },
    })
  }
  const { config } = parseImageConfig(bytes, { origin })
  const diffIds = config.rootfs.diff_ids
  if (diffIds.length !== layerCount) {
    throw new StrataError('CORRUPT', `Image config ${origin} lists ${diffIds.length} layer diff_ids but the image has ${layerCount} layers`, {
      details: { diffIds: diffIds.length, layers: layerCount },
    })
  }
  return { id, config }
}

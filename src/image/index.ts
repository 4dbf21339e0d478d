/**
 * The image layer of the store: image configs, the image store (imagedb),
 * the reference store (repositories.json) and distribution metadata, all in
 * dockerd 20.10's files under `<root>/image/<driver>/`.
 */
export {
  imageChainIds,
  imageOperatingSystem,
  parseImageConfig,
  topChainId,
  validateForCreate,
  type ContainerConfig,
  type HistoryEntry,
  type ImageConfig,
  type ImageID,
  type ParseImageConfigOptions,
  type ParsedImageConfig,
  type RootFS,
} from './config.js'
export { CHANGE_COMMANDS, applyChanges } from './changes.js'
export {
  ImageStore,
  parseImageId,
  type CreateImageOptions,
  type CreateImageResult,
  type DeleteImageResult,
  type Image,
  type ImageCheckOptions,
  type ImageLayers,
  type ImageStoreOptions,
} from './store.js'
export {
  ReferenceStore,
  familiarName,
  familiarString,
  parseReference,
  referenceName,
  referenceString,
  withDefaultTag,
  type AddReferenceOptions,
  type AddReferenceResult,
  type Reference,
  type ReferenceCheckOptions,
  type ReferenceEntry,
  type ReferenceStoreOptions,
} from './reference.js'
export {
  DistributionMetadataStore,
  MAX_V2_METADATA,
  checkV2MetadataHmac,
  computeV2MetadataHmac,
  encodeV2Metadata,
  type DistributionMetadataOptions,
  type V2Metadata,
} from './distribution.js'

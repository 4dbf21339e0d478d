/**
 * Registry v2 distribution: pulling images from a registry (the CNCF
 * distribution server, Docker Hub, any OCI distribution registry) into a
 * store. Push is not here yet (issue 7).
 */
export { pullImage, type PullOptions, type PullResult } from './pull.js'
export {
  RegistryImageSource,
  resolveImage,
  fetchManifest,
  openBlob,
  lazyBlob,
  pickPlatform,
  MANIFEST_ACCEPT,
  type FetchedManifest,
  type ResolvedImage,
  type ResolveOptions,
} from './source.js'
export {
  RegistryClient,
  isLoopbackRegistry,
  parseAuthChallenge,
  DOCKER_HUB_REGISTRY_HOST,
  MAX_MANIFEST_BYTES,
  type AuthChallenge,
  type RegistryClientOptions,
  type RegistryRequest,
} from './client.js'
export { readRegistryAuth, dockerConfigPath, DOCKER_HUB_AUTH_KEY, type Credentials, type RegistryAuth } from './auth.js'

/**
 * src/transport/registry: the registry transport (Registry v2 / OCI
 * distribution): pulling images from a registry (the CNCF distribution
 * server, Docker Hub, any OCI distribution registry) into a store, and
 * pushing images from a store to a registry. A registry is one more place
 * images move to and from, so it lives beside docker-archive and
 * oci-layout, on transport's ImageSource contract and copy routines; it is
 * transport's documented sub-surface (docs/architecture.md), imported as
 * `transport/registry/index.js`.
 */
export { preparePull, pullImage, type PreparedPull, type PullOptions, type PullResult } from './pull.js'
export { pushImage, PUSH_CONCURRENCY, type PushOptions, type PushResult, type PushedLayer, type PushLayerStatus, type PushProgress } from './push.js'
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
  type RegistryResponse,
  type ResponseHeaders,
} from './client.js'
export { readRegistryAuth, dockerConfigPath, DOCKER_HUB_AUTH_KEY, type Credentials, type RegistryAuth } from './auth.js'
export { authKey, login, logout, type LoginOptions } from './login.js'

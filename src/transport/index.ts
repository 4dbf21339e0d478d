/**
 * src/transport: moving images between a strata store and the formats the
 * ecosystem uses: docker-archive (`docker save`/`load`), OCI image layout
 * (directory) and OCI archive (the layout in a tar), and rootfs import.
 * types.ts is the contract; copy.ts the routines most callers want.
 *
 * @example
 * import { Store, transport } from 'strata'
 * const source = await transport.openImageSource('busybox.tar', { tmpDir: '/var/lib/strata/tmp' })
 * try {
 *   const { images } = await transport.loadImages(store, source)
 * } finally {
 *   await source.close()
 * }
 * await transport.saveImages(store, ['busybox'], transport.openImageDestination('out.tar', 'oci-archive'))
 */
export * from './types.js'
export { loadImages, loadableReference, openImageDestination, openImageSource, saveImages, type OpenSourceOptions } from './copy.js'
export { importRootfs } from './import.js'
export { DockerArchiveSource } from './docker-archive/source.js'
export { DockerArchiveDestination } from './docker-archive/destination.js'
export { OciLayoutSource, type OciLayoutSourceOptions } from './oci-layout/source.js'
export { OciLayoutDestination } from './oci-layout/destination.js'
export { DirectoryFiles, type ArchiveFile, type ArchiveFiles } from './files.js'
export { TarIndex, type TarMember, type TarMemberType } from './tar-index.js'
export { spoolTar, type SpooledTar, type SpoolOptions } from './spool.js'
export { hostPlatform, platformMatches, formatPlatform, type Platform } from './platform.js'

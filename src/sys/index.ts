/**
 * src/sys: the only module that calls libc. Every wrapper is synchronous
 * (these calls are short) and throws a SysError carrying errno, the syscall
 * and the path it was about.
 */
export { SysError } from './libc.js'
export * from './fs.js'
export * from './xattr.js'
export * from './mount.js'
export * from './btrfs.js'
export * from './dirent.js'
export * from './flock.js'
export * from './devmapper.js'
export * from './loop.js'
export * from './users.js'
export * from './faults.js'
export * from './socket.js'

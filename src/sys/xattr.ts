/** Extended attributes on the link itself (never following a final symlink). */
import { libc, check, lastErrno, SysError } from './libc.js'

const lsetxattrC = libc.func('int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)')
const lgetxattrC = libc.func('long lgetxattr(const char *path, const char *name, _Out_ void *value, size_t size)')
const llistxattrC = libc.func('long llistxattr(const char *path, _Out_ void *list, size_t size)')
const lremovexattrC = libc.func('int lremovexattr(const char *path, const char *name)')

const ENODATA = 61
const ERANGE = 34

export function lsetxattr(path: string, name: string, value: Buffer | string, flags = 0): void {
  const buf = typeof value === 'string' ? Buffer.from(value) : value
  check(lsetxattrC(path, name, buf, buf.length, flags), 'lsetxattr', `${path}: ${name}`)
}

/** The value of one attribute, or undefined when the file does not have it. */
export function lgetxattr(path: string, name: string): Buffer | undefined {
  let size = 256
  for (;;) {
    const buf = Buffer.allocUnsafe(size)
    const n = Number(lgetxattrC(path, name, buf, size))
    if (n >= 0) return buf.subarray(0, n)
    const errno = lastErrno()
    if (errno === ENODATA) return undefined
    if (errno !== ERANGE) throw new SysError('lgetxattr', errno, `${path}: ${name}`)
    const needed = Number(lgetxattrC(path, name, null, 0))
    size = needed > size ? needed : size * 4
  }
}

/** Attribute names of a file, in the order the filesystem lists them. */
export function llistxattr(path: string): string[] {
  let size = 1024
  for (;;) {
    const buf = Buffer.allocUnsafe(size)
    const n = Number(llistxattrC(path, buf, size))
    if (n >= 0) return n === 0 ? [] : buf.toString('latin1', 0, n - 1).split('\0').map((s) => Buffer.from(s, 'latin1').toString())
    const errno = lastErrno()
    if (errno !== ERANGE) throw new SysError('llistxattr', errno, path)
    const needed = Number(llistxattrC(path, null, 0))
    size = needed > size ? needed : size * 4
  }
}

export function lremovexattr(path: string, name: string): void {
  check(lremovexattrC(path, name), 'lremovexattr', `${path}: ${name}`)
}

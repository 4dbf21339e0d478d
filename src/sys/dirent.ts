/**
 * Raw directory entries through getdents64(2). Node cannot tell whether a
 * filesystem fills in d_type: when the kernel reports DT_UNKNOWN, readdir
 * with `withFileTypes` quietly lstat()s the entry and reports the real type.
 */
import { closeSync, openSync, constants } from 'node:fs'
import { check, libc } from './libc.js'

const getdents64C = libc.func('long getdents64(int fd, _Out_ void *buf, size_t len)')

/** d_type when the filesystem does not say (dirent.h). */
export const DT_UNKNOWN = 0

/** Name → d_type of every entry of `dir` (`.` and `..` included) as the filesystem reports them. */
export function rawDirentTypes(dir: string): Map<string, number> {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY)
  const out = new Map<string, number>()
  try {
    const buf = Buffer.alloc(32 * 1024)
    for (;;) {
      const n = check(getdents64C(fd, buf, buf.length), 'getdents64', dir)
      if (n === 0) break
      // struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
      for (let off = 0; off < n; ) {
        const reclen = buf.readUInt16LE(off + 16)
        const type = buf.readUInt8(off + 18)
        const nameEnd = buf.indexOf(0, off + 19)
        out.set(buf.toString('utf8', off + 19, nameEnd < 0 || nameEnd > off + reclen ? off + reclen : nameEnd), type)
        off += reclen
      }
    }
  } finally {
    closeSync(fd)
  }
  return out
}

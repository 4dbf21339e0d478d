/**
 * User and group names of numeric ids, from the host's name service
 * (getpwuid_r / getgrgid_r, so /etc/passwd and whatever nsswitch.conf adds),
 * as dockerd looks them up for the uname/gname of the tar headers it writes
 * (Go's os/user through cgo, which calls the same two functions).
 */
import { libc, koffi } from './libc.js'

const getpwuidC = libc.func('int getpwuid_r(uint32_t uid, _Out_ void *pwd, _Out_ void *buf, size_t buflen, _Out_ void *result)')
const getgrgidC = libc.func('int getgrgid_r(uint32_t gid, _Out_ void *grp, _Out_ void *buf, size_t buflen, _Out_ void *result)')

const ERANGE = 34
/** struct passwd is 48 bytes and struct group 32 on x86_64 and arm64; room to spare. */
const STRUCT_SIZE = 64
/** Go's os/user stops growing its buffer here too (maxBufferSize). */
const MAX_BUFFER = 1 << 20

type Lookup = (id: number, record: Buffer, buf: Buffer, buflen: number, result: Buffer) => number

/**
 * The name field (the first member of both structs) of the record for
 * `id`, or undefined when the name service has none or fails. The name lives in
 * `buf`, which koffi hands to libc as is: read it from there by offset.
 */
function lookupName(fn: Lookup, id: number): string | undefined {
  if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) return undefined
  const record = Buffer.alloc(STRUCT_SIZE)
  const result = Buffer.alloc(8)
  for (let size = 1024; ; size *= 2) {
    const buf = Buffer.alloc(size)
    const rc = fn(id, record, buf, size, result)
    if (rc === ERANGE && size < MAX_BUFFER) continue
    // Any other failure is no name, as for Go, which leaves the name empty on a lookup error.
    if (rc !== 0) return undefined
    if (result.readBigUInt64LE(0) === 0n) return undefined
    const offset = Number(record.readBigUInt64LE(0) - BigInt(koffi().address(buf)))
    if (offset < 0 || offset >= size) return undefined
    const end = buf.indexOf(0, offset)
    return buf.toString('utf8', offset, end < 0 ? size : end)
  }
}

/** The user name of `uid` (getpwuid_r), or undefined when there is none. */
export function userName(uid: number): string | undefined {
  return lookupName(getpwuidC as Lookup, uid)
}

/** The group name of `gid` (getgrgid_r), or undefined when there is none. */
export function groupName(gid: number): string | undefined {
  return lookupName(getgrgidC as Lookup, gid)
}

/**
 * What filesystem a thin device holds, and its UUID, read from the
 * superblock (dockerd's ProbeFsType reads the same magic numbers; it asks
 * blkid for the UUID, which reads the same 16 bytes):
 *
 *   xfs   "XFSB" at byte 0;        sb_uuid at byte 32
 *   ext4  0xEF53 (LE) at 1024+56;  s_uuid at 1024+104
 *
 * And making one (mkfs), with the arguments dockerd passes.
 */
import { execFile } from 'node:child_process'
import { closeSync, openSync, readFileSync, readSync } from 'node:fs'
import { promisify } from 'node:util'
import { StrataError } from '../../errors/index.js'

// Made on the first call, not at import: the CLI bundle loads child_process on first use (scripts/bundle-cli.mjs).
let execFileAsync: ((file: string, args: string[]) => Promise<{ stdout: string; stderr: string }>) | undefined
const run = (file: string, args: string[]): Promise<{ stdout: string; stderr: string }> => (execFileAsync ??= promisify(execFile))(file, args)

export type DeviceFs = 'xfs' | 'ext4'

function readHead(device: string): Buffer {
  const buf = Buffer.alloc(2048)
  const fd = openSync(device, 'r')
  try {
    readSync(fd, buf, 0, buf.length, 0)
  } finally {
    closeSync(fd)
  }
  return buf
}

function uuidString(b: Buffer): string {
  const h = b.toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

/** The filesystem on `device` and its UUID; undefined when it holds neither xfs nor ext4 (unformatted). */
export function probeFilesystem(device: string): { fs: DeviceFs; uuid: string } | undefined {
  const head = readHead(device)
  if (head.toString('latin1', 0, 4) === 'XFSB') return { fs: 'xfs', uuid: uuidString(head.subarray(32, 48)) }
  if (head.readUInt16LE(1024 + 56) === 0xef53) return { fs: 'ext4', uuid: uuidString(head.subarray(1024 + 104, 1024 + 120)) }
  return undefined
}

/** dockerd's default dm.fs: xfs when mkfs.xfs runs and the kernel has xfs (after `modprobe xfs`), else ext4. */
export async function defaultFilesystem(): Promise<DeviceFs> {
  try {
    await run('mkfs.xfs', ['-V'])
  } catch {
    return 'ext4'
  }
  await run('modprobe', ['xfs']).catch(() => undefined)
  try {
    if (/\txfs$/m.test(readFileSync('/proc/filesystems', 'utf8'))) return 'xfs'
  } catch {
    // no /proc: assume not
  }
  return 'ext4'
}

/** Makes `fs` on `device` as dockerd does (ext4 without discard and lazy init, checks off). */
export async function makeFilesystem(fs: DeviceFs, device: string, extraArgs: string[]): Promise<void> {
  try {
    if (fs === 'xfs') {
      await run('mkfs.xfs', [...extraArgs, device])
      return
    }
    try {
      await run('mkfs.ext4', ['-E', 'nodiscard,lazy_itable_init=0,lazy_journal_init=0', ...extraArgs, device])
    } catch {
      await run('mkfs.ext4', ['-E', 'nodiscard,lazy_itable_init=0', ...extraArgs, device])
    }
    await run('tune2fs', ['-c', '-1', '-i', '0', device])
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim()
    throw new StrataError('SYSCALL', `Cannot make a ${fs} filesystem on "${device}": ${stderr || (err as Error).message}`, { cause: err })
  }
}

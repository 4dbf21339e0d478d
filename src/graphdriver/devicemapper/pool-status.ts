/**
 * A thin pool's status line (DM_TABLE_STATUS), as the kernel's
 * Documentation/admin-guide/device-mapper/thin-provisioning.rst gives it:
 *
 *   <transaction id> <used meta>/<total meta> <used data>/<total data> <held metadata root>
 *   ro|rw|out_of_data_space [no_]discard_passdown error|queue_if_no_space needs_check|-
 *   <metadata low watermark>
 *
 * Metadata blocks are 4 KiB; data blocks are the pool's block size, which
 * is the table's length divided by the data block count. A failed pool
 * reports "Fail" alone.
 */
import { StrataError } from '../../errors/index.js'

export interface PoolStatus {
  transactionId: number
  metadataUsed: number
  metadataTotal: number
  dataUsed: number
  dataTotal: number
  /** Bytes per data block. */
  blockBytes: number
  dataUsedBytes: number
  dataTotalBytes: number
  metadataUsedBytes: number
  metadataTotalBytes: number
  readOnly: boolean
  outOfDataSpace: boolean
  errorIfNoSpace: boolean
  needsCheck: boolean
}

const META_BLOCK = 4096

export function parsePoolStatus(params: string, lengthSectors: bigint, pool: string): PoolStatus {
  const f = params.trim().split(/\s+/)
  const ratio = (s: string | undefined): [number, number] | undefined => {
    const m = /^(\d+)\/(\d+)$/.exec(s ?? '')
    return m === null ? undefined : [Number(m[1]), Number(m[2])]
  }
  const meta = ratio(f[1])
  const data = ratio(f[2])
  if (f[0] === 'Fail' || meta === undefined || data === undefined || !/^\d+$/.test(f[0] ?? '')) {
    throw new StrataError('CORRUPT', `The thin pool "${pool}" reports an unusable status "${params.trim()}"${f[0] === 'Fail' ? ' (the pool has failed)' : ''}`, { details: { pool } })
  }
  const blockBytes = data[1] === 0 ? 0 : Number((lengthSectors / BigInt(data[1])) * 512n)
  return {
    transactionId: Number(f[0]),
    metadataUsed: meta[0],
    metadataTotal: meta[1],
    dataUsed: data[0],
    dataTotal: data[1],
    blockBytes,
    dataUsedBytes: data[0] * blockBytes,
    dataTotalBytes: data[1] * blockBytes,
    metadataUsedBytes: meta[0] * META_BLOCK,
    metadataTotalBytes: meta[1] * META_BLOCK,
    readOnly: f[4] === 'ro',
    outOfDataSpace: f[4] === 'out_of_data_space',
    errorIfNoSpace: f[6] === 'error_if_no_space',
    needsCheck: f[7] === 'needs_check',
  }
}

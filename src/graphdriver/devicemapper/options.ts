/**
 * The devicemapper driver's options (`--storage-opt dm.*`), the ones
 * dockerd 20.10 knows, with its defaults. Parsing is pure; what the
 * options mean is in deviceset.ts.
 *
 * Not supported (NOT_SUPPORTED, by name): dm.directlvm_* and dm.thinp_*
 * (dockerd sets up an LVM volume group with lvm2's tools; strata does not
 * drive LVM), dm.datadev/dm.metadatadev (deprecated in dockerd; give the
 * pool with dm.thinpooldev instead), dm.xfs_nospace_max_retries.
 * dm.libdm_log_level is accepted and ignored: there is no libdm here.
 */
import { StrataError } from '../../errors/index.js'

const GiB = 1024 ** 3

export interface DevmapperOptions {
  /** dm.basesize: the size of every thin device (10 GB). */
  baseSize: number
  /** True when dm.basesize was given (dockerd then grows an existing base device to it). */
  baseSizeGiven: boolean
  /** dm.loopdatasize: the sparse data file's size (100 GB). */
  loopDataSize: number
  /** dm.loopmetadatasize: the sparse metadata file's size (2 GB). */
  loopMetadataSize: number
  /** dm.fs: the base device's filesystem; undefined: xfs when the kernel and mkfs.xfs have it, else ext4. */
  fs: 'ext4' | 'xfs' | undefined
  /** dm.mkfsarg, in order. */
  mkfsArgs: string[]
  /** dm.mountopt, joined with commas. */
  mountOptions: string
  /** dm.thinpooldev: an existing pool's name (a /dev/mapper/ prefix is dropped). */
  thinPoolDevice: string | undefined
  /** dm.blkdiscard: discard a device's blocks before deleting it (default true for loop files, false for dm.thinpooldev). */
  blkDiscard: boolean
  /** dm.blocksize in 512-byte sectors (64 KiB = 128). */
  blockSizeSectors: number
  /** dm.override_udev_sync_check: accepted; strata never waits for udev. */
  overrideUdevSyncCheck: boolean
  /** dm.use_deferred_removal; undefined: on when the kernel can (dm 4.27+), as dockerd with a libdm that can. */
  deferredRemoval: boolean | undefined
  /** dm.use_deferred_deletion; undefined: as deferred removal. */
  deferredDeletion: boolean | undefined
  /** dm.min_free_space: the percentage of the pool (data and metadata) a create must leave free (10). */
  minFreeSpacePercent: number
}

export function defaultOptions(): DevmapperOptions {
  return {
    baseSize: 10 * GiB,
    baseSizeGiven: false,
    loopDataSize: 100 * GiB,
    loopMetadataSize: 2 * GiB,
    fs: undefined,
    mkfsArgs: [],
    mountOptions: '',
    thinPoolDevice: undefined,
    blkDiscard: true,
    blockSizeSectors: 128,
    overrideUdevSyncCheck: false,
    deferredRemoval: undefined,
    deferredDeletion: undefined,
    minFreeSpacePercent: 10,
  }
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 }

/**
 * docker/go-units RAMInBytes: "10G", "512m", "100 MiB", "2gb", "4096":
 * a decimal number and a binary unit (k, m, g, t, p; b, ib or nothing after it).
 */
export function parseRamBytes(value: string, what: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?\s*$/i.exec(value)
  if (m === null) throw new StrataError('INVALID_ARGUMENT', `Invalid size "${value}" for ${what} (expected a number with an optional unit: 10G, 512M, 4096)`)
  const bytes = Math.floor(Number(m[1]) * UNITS[(m[2] ?? '').toLowerCase()]!)
  if (!Number.isSafeInteger(bytes)) throw new StrataError('INVALID_ARGUMENT', `Size "${value}" for ${what} is too large`)
  return bytes
}

function parseBool(value: string, key: string): boolean {
  // Go's strconv.ParseBool.
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false
  throw new StrataError('INVALID_ARGUMENT', `Invalid value "${value}" for ${key} (expected true or false)`)
}

function parsePercent(value: string, key: string): number {
  if (!value.endsWith('%')) throw new StrataError('INVALID_ARGUMENT', `Option ${key} requires a % suffix (got "${value}")`)
  const n = Number(value.slice(0, -1))
  if (!Number.isInteger(n) || n < 0 || n >= 100) throw new StrataError('INVALID_ARGUMENT', `Invalid value "${value}" for ${key} (0% to 99%)`)
  return n
}

/** Parses the driver options; unknown keys are INVALID_ARGUMENT, LVM set-up keys NOT_SUPPORTED. */
export function parseOptions(options: Record<string, string> | undefined): DevmapperOptions {
  const o = defaultOptions()
  let blkDiscardGiven = false
  for (const [rawKey, value] of Object.entries(options ?? {})) {
    const key = rawKey.toLowerCase()
    switch (key) {
      case 'dm.basesize':
        o.baseSize = parseRamBytes(value, key)
        o.baseSizeGiven = true
        break
      case 'dm.loopdatasize':
        o.loopDataSize = parseRamBytes(value, key)
        break
      case 'dm.loopmetadatasize':
        o.loopMetadataSize = parseRamBytes(value, key)
        break
      case 'dm.fs':
        if (value !== 'ext4' && value !== 'xfs') throw new StrataError('INVALID_ARGUMENT', `Unsupported filesystem "${value}" for dm.fs (ext4 or xfs)`)
        o.fs = value
        break
      case 'dm.mkfsarg':
        o.mkfsArgs.push(value)
        break
      case 'dm.mountopt':
        o.mountOptions = o.mountOptions === '' ? value : value === '' ? o.mountOptions : `${o.mountOptions},${value}`
        break
      case 'dm.thinpooldev':
        o.thinPoolDevice = value.replace(/^\/dev\/mapper\//, '')
        if (o.thinPoolDevice === '' || o.thinPoolDevice.includes('/')) throw new StrataError('INVALID_ARGUMENT', `Invalid dm.thinpooldev "${value}" (a device-mapper name, or /dev/mapper/NAME)`)
        break
      case 'dm.blkdiscard':
        o.blkDiscard = parseBool(value, key)
        blkDiscardGiven = true
        break
      case 'dm.blocksize': {
        const bytes = parseRamBytes(value, key)
        // The kernel wants 64 KiB to 1 GiB, a multiple of 64 KiB.
        if (bytes < 64 * 1024 || bytes > GiB || bytes % (64 * 1024) !== 0) {
          throw new StrataError('INVALID_ARGUMENT', `Invalid dm.blocksize "${value}": a thin pool block is 64K to 1G, in multiples of 64K`)
        }
        o.blockSizeSectors = bytes / 512
        break
      }
      case 'dm.override_udev_sync_check':
        o.overrideUdevSyncCheck = parseBool(value, key)
        break
      case 'dm.use_deferred_removal':
        o.deferredRemoval = parseBool(value, key)
        break
      case 'dm.use_deferred_deletion':
        o.deferredDeletion = parseBool(value, key)
        break
      case 'dm.min_free_space':
        o.minFreeSpacePercent = parsePercent(value, key)
        break
      case 'dm.libdm_log_level':
        break
      case 'dm.directlvm_device':
      case 'dm.directlvm_device_force':
      case 'dm.thinp_percent':
      case 'dm.thinp_metapercent':
      case 'dm.thinp_autoextend_percent':
      case 'dm.thinp_autoextend_threshold':
        throw new StrataError('NOT_SUPPORTED', `The devicemapper option ${key} sets up an LVM thin pool, which strata does not do; create the pool yourself and pass dm.thinpooldev`)
      case 'dm.datadev':
      case 'dm.metadatadev':
        throw new StrataError('NOT_SUPPORTED', `The devicemapper option ${key} is not supported (deprecated in dockerd too); create a thin pool on the devices and pass dm.thinpooldev`)
      case 'dm.xfs_nospace_max_retries':
        throw new StrataError('NOT_SUPPORTED', `The devicemapper option ${key} is not supported by strata`)
      default:
        throw new StrataError('INVALID_ARGUMENT', `Unknown devicemapper option "${rawKey}"`, { details: { key: rawKey } })
    }
  }
  // dockerd: no discard hack on real devices by default, it is rarely useful and expensive.
  if (!blkDiscardGiven && o.thinPoolDevice !== undefined) o.blkDiscard = false
  if (o.deferredDeletion === true && o.deferredRemoval === false) {
    throw new StrataError('INVALID_ARGUMENT', 'Deferred deletion needs deferred removal: dm.use_deferred_deletion=true with dm.use_deferred_removal=false')
  }
  return o
}

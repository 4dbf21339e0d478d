/**
 * The devicemapper driver's files and device names, exactly as dockerd
 * 20.10 lays them out (daemon/graphdriver/devmapper/deviceset.go, driver.go):
 *
 *   <root>/devicemapper/                    0700   the driver's home ("<home>" below)
 *   ├── devicemapper/                       0700   loop-lvm only: the pool's backing files
 *   │   ├── data                            0600   sparse, dm.loopdatasize (100 GB): the pool's data device
 *   │   └── metadata                        0600   sparse, dm.loopmetadatasize (2 GB): its metadata device
 *   ├── metadata/                           0700   one JSON file per thin device, plus two of the set's:
 *   │   ├── base                                   the base device (hash ""):
 *   │   │                                          {"device_id":1,"size":10737418240,"transaction_id":1,
 *   │   │                                           "initialized":true,"deleted":false}
 *   │   ├── <id>                                   a layer's device, same fields; "deleted": true while a
 *   │   │                                          deferred deletion waits for the device to close
 *   │   ├── deviceset-metadata                     {"next_device_id":3,"BaseDeviceUUID":"…",
 *   │   │                                           "BaseDeviceFilesystem":"xfs"}
 *   │   ├── transaction-metadata                   {"open_transaction_id":3,"device_hash":"<id>","device_id":2}
 *   │   │                                          the last transaction opened; it is still open (to be
 *   │   │                                          rolled back on the next open) while the pool's own
 *   │   │                                          transaction id is lower
 *   │   ├── .tmp<random>                           a file being written (temp + fsync + rename)
 *   │   └── .strata-lock                           strata only: flock serialising pool changes across
 *   │                                              processes (dockerd skips dot files in metadata/)
 *   └── mnt/                                0755
 *       └── <id>/                           0755   while the layer is mounted: its device's filesystem
 *           ├── id                          0600   the id of the layer whose get first mounted this
 *           │                                      filesystem (a snapshot inherits its parent's file)
 *           └── rootfs/                     0755   the layer's content (what get returns)
 *
 * Device names (/dev/mapper/<name>): the pool is `docker-<major>:<minor>-<inode>-pool`, from the
 * device and inode of <home>, unless dm.thinpooldev names an existing pool; a layer's device is
 * `docker-<major>:<minor>-<inode>-<id>` and the base device `…-base`. Thin device ids are 24 bits.
 *
 * Sizes: thin devices are dm.basesize (10 GB) each unless created bigger; the pool's blocks are
 * dm.blocksize (64 KiB = 128 sectors); every number in a table or status line is in 512-byte
 * sectors, the pool's usage in its blocks (data) and 4 KiB blocks (metadata).
 */
import { join } from 'node:path'

export const DRIVER_NAME = 'devicemapper'

export const HOME_MODE = 0o700
export const LOOPBACK_DIR_MODE = 0o700
export const LOOPBACK_FILE_MODE = 0o600
export const METADATA_DIR_MODE = 0o700
export const MNT_DIR_MODE = 0o755
export const ID_FILE_MODE = 0o600
export const ROOTFS_MODE = 0o755

/** The metadata file name of the base device (its hash is ""). */
export const BASE_FILE = 'base'
export const DEVICESET_FILE = 'deviceset-metadata'
export const TRANSACTION_FILE = 'transaction-metadata'
export const LOCK_FILE = '.strata-lock'
/** Temp files in metadata/ start with this (dockerd's ioutil.TempFile(dir, ".tmp")). */
export const TMP_PREFIX = '.tmp'

/** Thin device ids are 24 bits. */
export const MAX_DEVICE_ID = 0xffffff

/** Paths under a driver home. */
export class DevmapperLayout {
  readonly home: string

  constructor(root: string) {
    this.home = join(root, DRIVER_NAME)
  }

  /** `<home>/devicemapper`: the loop-lvm backing files' directory. */
  get loopbackDir(): string {
    return join(this.home, 'devicemapper')
  }

  get dataFile(): string {
    return join(this.loopbackDir, 'data')
  }

  get metadataFile(): string {
    return join(this.loopbackDir, 'metadata')
  }

  /** `<home>/metadata` */
  get metadataDir(): string {
    return join(this.home, 'metadata')
  }

  /** `<home>/metadata/<hash>`, `base` for the base device. */
  deviceFile(hash: string): string {
    return join(this.metadataDir, hash === '' ? BASE_FILE : hash)
  }

  get deviceSetFile(): string {
    return join(this.metadataDir, DEVICESET_FILE)
  }

  get transactionFile(): string {
    return join(this.metadataDir, TRANSACTION_FILE)
  }

  get lockFile(): string {
    return join(this.metadataDir, LOCK_FILE)
  }

  /** `<home>/mnt` */
  get mntDir(): string {
    return join(this.home, 'mnt')
  }

  /** `<home>/mnt/<id>`: where the layer's device is mounted. */
  mountPoint(id: string): string {
    return join(this.home, 'mnt', id)
  }

  /** `<home>/mnt/<id>/rootfs`: the layer's content while mounted. */
  rootfs(id: string): string {
    return join(this.home, 'mnt', id, 'rootfs')
  }

  /** `<home>/mnt/<id>/id` */
  idFile(id: string): string {
    return join(this.home, 'mnt', id, 'id')
  }
}

/** Whether a name in metadata/ is a device's file (dockerd's walk skips these others). */
export function isDeviceFileName(name: string): boolean {
  return !name.startsWith('.') && !name.endsWith('.migrated') && name !== DEVICESET_FILE && name !== TRANSACTION_FILE
}

/** The hash a metadata file name stands for ("base" is the base device, hash ""). */
export function hashOfFileName(name: string): string {
  return name === BASE_FILE ? '' : name
}

/** `docker-<major>:<minor>-<inode>`: the prefix of every device name, from the home's device and inode. */
export function devicePrefix(major: number, minor: number, inode: bigint): string {
  return `docker-${major}:${minor}-${inode}`
}

/** The dm name of a thin device: `<prefix>-<hash>`, `<prefix>-base` for the base device. */
export function deviceName(prefix: string, hash: string): string {
  return `${prefix}-${hash === '' ? 'base' : hash}`
}

/** A thin device's metadata file, as dockerd's devInfo marshals it (field order kept). */
export interface DeviceRecord {
  device_id: number
  size: number
  transaction_id: number
  initialized: boolean
  deleted: boolean
}

/** deviceset-metadata. */
export interface DeviceSetRecord {
  next_device_id: number
  BaseDeviceUUID: string
  BaseDeviceFilesystem: string
}

/** transaction-metadata. */
export interface TransactionRecord {
  open_transaction_id: number
  device_hash: string
  device_id: number
}

/** The JSON bytes dockerd writes for a device (encoding/json of devInfo: no spaces, this field order). */
export function encodeDeviceRecord(r: DeviceRecord): string {
  return JSON.stringify({ device_id: r.device_id, size: r.size, transaction_id: r.transaction_id, initialized: r.initialized, deleted: r.deleted })
}

export function encodeDeviceSetRecord(r: DeviceSetRecord): string {
  return JSON.stringify({ next_device_id: r.next_device_id, BaseDeviceUUID: r.BaseDeviceUUID, BaseDeviceFilesystem: r.BaseDeviceFilesystem })
}

export function encodeTransactionRecord(r: TransactionRecord): string {
  return JSON.stringify({ open_transaction_id: r.open_transaction_id, device_hash: r.device_hash, device_id: r.device_id })
}

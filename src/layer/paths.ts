/**
 * Where the layer store keeps its files: dockerd 20.10's
 * `<root>/image/<driver>/layerdb/`, one object per data root and driver.
 *
 *   layerdb/                               0700
 *   ├── sha256/                            0755
 *   │   ├── <chainID hex>/                 0700  a read-only layer (diff, size, cache-id, parent, tar-split.json.gz)
 *   │   └── <chainID hex>-<64 hex>-removing/      a layer being deleted (dockerd's orphan convention)
 *   ├── mounts/                            0755
 *   │   └── <name>/                        0755  a container's RW layer (mount-id, init-id, parent, mount-count)
 *   └── tmp/                               0755
 *       ├── write-set-<random>/            0700  a registration or mount creation in progress
 *       └── removing-mount-<random>/             a mount record being removed
 *
 * Also the id rules: chainIDs are sha256 digests, driver ids are 64 hex
 * with an optional `-init` (dockerd's stringIDRegexp).
 */
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { digestHex, isDigest, type Digest } from '../digest/index.js'
import { StrataError } from '../errors/index.js'

export const LAYERDB_DIR_MODE = 0o700
export const SHA256_DIR_MODE = 0o755
export const MOUNTS_DIR_MODE = 0o755
export const TMP_DIR_MODE = 0o755
/** Every metadata file, as dockerd's AtomicWriteSet and filestore write them. */
export const FILE_MODE = 0o644
/** A mount record's directory (dockerd: MkdirAll(mountdir, 0755)). */
export const MOUNT_DIR_MODE = 0o755

/** Transaction directories: dockerd's ioutils.NewAtomicWriteSet prefix. */
export const WRITE_SET_PREFIX = 'write-set-'
/** A mount record moved out of mounts/ while its driver layers are removed. */
export const REMOVING_MOUNT_PREFIX = 'removing-mount-'
export const REMOVING_SUFFIX = '-removing'

/** A driver layer id as dockerd accepts it in cache-id, mount-id and init-id files. */
export const DRIVER_ID_RE = /^[a-f0-9]{64}(-init)?$/
export const HEX64_RE = /^[a-f0-9]{64}$/
/** `<chain hex>-<64 hex>-removing` */
export const REMOVING_RE = /^([a-f0-9]{64})-[a-f0-9]{64}-removing$/
/** Mount names: container ids, or any name that is one safe path component. */
const MOUNT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/

/** A fresh random 64-hex id (dockerd's stringid.GenerateRandomID). */
export function newRandomId(): string {
  return randomBytes(32).toString('hex')
}

/** INVALID_ARGUMENT unless `name` can be a directory under mounts/. */
export function validateMountName(name: string): void {
  if (!MOUNT_NAME_RE.test(name) || name.length > 255) {
    throw new StrataError('INVALID_ARGUMENT', `Invalid mount name "${name}": expected letters, digits, "_", "." or "-", not starting with a punctuation mark`)
  }
}

function checkChain(chain: Digest): Digest {
  if (!isDigest(chain)) throw new StrataError('INVALID_ARGUMENT', `Invalid chainID "${String(chain)}": expected sha256:<64 lowercase hex>`)
  return chain
}

export class LayerDbPaths {
  /** `<root>/image/<driver>/layerdb` */
  readonly root: string
  readonly sha256: string
  readonly mounts: string
  readonly tmp: string

  constructor(dataRoot: string, driverName: string) {
    this.root = join(dataRoot, 'image', driverName, 'layerdb')
    this.sha256 = join(this.root, 'sha256')
    this.mounts = join(this.root, 'mounts')
    this.tmp = join(this.root, 'tmp')
  }

  /** `sha256/<hex>`; INVALID_ARGUMENT for anything but a sha256 digest (it becomes a path). */
  layerDir(chain: Digest): string {
    return join(this.sha256, digestHex(checkChain(chain)))
  }

  /** A fresh `-removing` name for `chain`'s directory. */
  removingDir(chain: Digest): string {
    return join(this.sha256, `${digestHex(checkChain(chain))}-${newRandomId()}${REMOVING_SUFFIX}`)
  }

  mountDir(name: string): string {
    return join(this.mounts, name)
  }
}

/**
 * The device set: a thin pool, a base device with a filesystem, and one
 * thin snapshot per layer, kept as dockerd 20.10 keeps them (layout.ts
 * draws the files). This is the half of the driver that talks to
 * device-mapper; driver.ts maps the graph driver calls onto it.
 *
 * Transactions, as dockerd does them: every change to the pool (create_thin,
 * create_snap, delete) is one transaction. Its record
 * (transaction-metadata: the next transaction id, the device's hash and
 * thin id) is written BEFORE the pool message, the device's metadata file
 * after it, and the pool's own transaction id is moved to the new id
 * last (set_transaction_id), which closes it. A process killed anywhere in
 * between leaves the pool's id lower than the record's: the next open
 * rolls the transaction back (deletes the thin id from the pool, removes
 * the device's metadata file), so the pool and the metadata agree again.
 *
 * Across processes every pool change runs under an exclusive flock of
 * metadata/.strata-lock, and reads its state (transaction id, device
 * files) fresh inside it: several strata processes can share one data
 * root. dockerd does not take that lock; strata and dockerd must not run
 * on one data root at the same time (as with every driver).
 *
 * Differences from dockerd, on purpose:
 * - The pool strata creates errors when it runs out of space
 *   (error_if_no_space) instead of queueing I/O for 60 s, so a full pool
 *   fails the operation at once with a clear error.
 * - The pool is left active when a strata process ends (dockerd removes it
 *   at shutdown): strata has no daemon, and the next command, or another
 *   process using the pool now, would have to set it up again. shutdown()
 *   removes it when nothing uses it.
 * - No udev: device nodes in /dev/mapper are made by mknod when missing
 *   (src/sys/devmapper.ts), as with dm.override_udev_sync_check.
 * - The base device's UUID comes from its superblock, not from blkid.
 * - dm.basesize larger than an existing base device is refused instead of
 *   growing it (growing needs resize2fs/xfs_growfs on a mounted device).
 */
import { closeSync, fsyncSync, statfsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, truncateSync, writeSync, chmodSync, unlinkSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { dirname, join } from 'node:path'
import { StrataError, isErrno } from '../../errors/index.js'
import { FileLock } from '../../fs/index.js'
import {
  LO_FLAGS_AUTOCLEAR,
  MNT_DETACH,
  SysError,
  attachLoopDevice,
  blockDeviceSize,
  discardBlockDevice,
  dmCancelDeferredRemove,
  dmCreateDevice,
  dmDeviceInfo,
  dmDevicePath,
  dmDriverVersion,
  dmLoadTable,
  dmMessage,
  dmRemoveDevice,
  dmResume,
  dmStatus,
  dmSuspend,
  dmTable,
  findLoopDevice,
  major as devMajor,
  minor as devMinor,
  mount,
  umount2,
  type DmDeviceInfo,
  type LoopDevice,
} from '../../sys/index.js'
import { defaultFilesystem, makeFilesystem, probeFilesystem, type DeviceFs } from './fsprobe.js'
import {
  DevmapperLayout,
  HOME_MODE,
  LOOPBACK_DIR_MODE,
  LOOPBACK_FILE_MODE,
  MAX_DEVICE_ID,
  METADATA_DIR_MODE,
  TMP_PREFIX,
  deviceName,
  devicePrefix,
  encodeDeviceRecord,
  encodeDeviceSetRecord,
  encodeTransactionRecord,
  hashOfFileName,
  isDeviceFileName,
  type DeviceRecord,
  type DeviceSetRecord,
  type TransactionRecord,
} from './layout.js'
import type { DevmapperOptions } from './options.js'
import { parsePoolStatus, type PoolStatus } from './pool-status.js'

/** The low water mark dockerd gives its pools (in blocks): a dm event when free data blocks fall below it. */
const LOW_WATER_MARK = 32768
/** Device-mapper interface version from which the kernel can remove a device when its last opener closes it. */
const DEFERRED_REMOVE_MINOR = 27

/** A thin device of the set, from its metadata file. */
export interface DeviceInfo extends DeviceRecord {
  hash: string
  /** Its device-mapper name. */
  name: string
}

/** One thing `check` found wrong between the pool and the metadata. */
export interface DeviceSetProblem {
  kind: 'pool' | 'device-metadata' | 'device-missing' | 'transaction' | 'duplicate-id'
  subject: string
  message: string
}

function syscallError(err: unknown, message: string): StrataError {
  const code = (err as { code?: unknown }).code
  return new StrataError('SYSCALL', `${message}: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
    details: typeof code === 'string' ? { errno: code } : {},
  })
}

/** Writes `data` to `path` as dockerd's writeMetaFile: a temp file in the same dir, fsync, rename. */
function writeMetaFile(path: string, data: string): void {
  const tmp = join(dirname(path), `${TMP_PREFIX}${randomBytes(6).toString('hex')}`)
  const fd = openSync(tmp, 'wx', 0o600)
  try {
    writeSync(fd, data)
    fsyncSync(fd)
  } catch (err) {
    closeSync(fd)
    rmSync(tmp, { force: true })
    throw err
  }
  closeSync(fd)
  try {
    renameSync(tmp, path)
  } catch (err) {
    rmSync(tmp, { force: true })
    throw err
  }
}

function readJson(path: string): unknown | undefined {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined
    throw err
  }
  return JSON.parse(text) as unknown
}

/** "1.5 GiB"-style sizes for messages (docker's units.HumanSize uses decimal "GB"; status() does that). */
function gib(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`
}

/** docker/go-units HumanSize: 4 significant digits, decimal units ("107.4GB", "65.54kB"). */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB']
  let i = 0
  let v = bytes
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000
    i++
  }
  return `${Number(v.toPrecision(4))}${units[i]}`
}

export class DeviceSet {
  readonly layout: DevmapperLayout
  readonly options: DevmapperOptions
  /** `docker-<maj>:<min>-<ino>` */
  readonly prefix: string
  readonly poolName: string
  readonly deferredRemove: boolean
  readonly deferredDelete: boolean
  readonly driverVersion: [number, number, number]
  /** The loop devices and files under the pool, when it runs on loop files. */
  dataLoop: { device: string; file: string } | undefined
  metadataLoop: { device: string; file: string } | undefined
  /** The pool was created by this process (loop files attached here). */
  poolCreatedHere = false
  baseFs: DeviceFs | undefined
  /** Pool changes, one at a time: in this process and, through the flock on metadata/.strata-lock, between processes. */
  readonly #lock: FileLock
  /** The last thin id handed out (deviceset-metadata's next_device_id, saved at shutdown). */
  #nextDeviceId = 0

  private constructor(layout: DevmapperLayout, options: DevmapperOptions, prefix: string, version: [number, number, number]) {
    this.layout = layout
    this.options = options
    this.prefix = prefix
    this.poolName = options.thinPoolDevice ?? `${prefix}-pool`
    this.driverVersion = version
    this.#lock = new FileLock(layout.lockFile)
    const kernelDeferred = version[0] > 4 || (version[0] === 4 && version[1] >= DEFERRED_REMOVE_MINOR)
    if (options.deferredRemoval === true && !kernelDeferred) {
      throw new StrataError('NOT_SUPPORTED', `Deferred removal (dm.use_deferred_removal) needs device-mapper 4.${DEFERRED_REMOVE_MINOR}; this kernel has ${version.join('.')}`)
    }
    this.deferredRemove = options.deferredRemoval ?? kernelDeferred
    this.deferredDelete = this.deferredRemove && (options.deferredDeletion ?? true)
  }

  /**
   * Opens the set on `<root>/devicemapper`: sets up the pool (attaching
   * the loop files, or checking dm.thinpooldev), rolls back a transaction a
   * killed process left open, and makes the base device if there is none.
   */
  static async open(root: string, options: DevmapperOptions): Promise<DeviceSet> {
    let version: [number, number, number]
    try {
      version = dmDriverVersion()
    } catch (err) {
      throw new StrataError('NOT_SUPPORTED', `device-mapper is not available here (${(err as Error).message}); the devicemapper driver needs the dm_mod and dm_thin_pool kernel modules`, { cause: err })
    }
    const layout = new DevmapperLayout(root)
    // A pool named by the user must exist before anything is written to the data root.
    if (options.thinPoolDevice !== undefined && dmDeviceInfo(options.thinPoolDevice) === undefined) {
      throw new StrataError('NOT_FOUND', `The thin pool "${options.thinPoolDevice}" (dm.thinpooldev) does not exist`, {
        hint: 'create it first (lvcreate --type thin-pool, or dmsetup create NAME --table "0 SECTORS thin-pool META DATA 128 32768")',
        details: { pool: options.thinPoolDevice },
      })
    }
    mkdirSync(root, { recursive: true })
    ensureDir(layout.home, HOME_MODE)
    ensureDir(layout.metadataDir, METADATA_DIR_MODE)
    const st = statSync(layout.home, { bigint: true })
    const set = new DeviceSet(layout, options, devicePrefix(devMajor(st.dev), devMinor(st.dev), st.ino), version)
    await set.#exclusive(() => set.#init())
    await set.cleanupDeletedDevices()
    return set
  }

  /** Runs `fn` alone: after every earlier call of this process, and under the cross-process flock. */
  #exclusive<T>(fn: () => Promise<T> | T): Promise<T> {
    return this.#lock.withLock(async () => fn())
  }

  async #init(): Promise<void> {
    const pool = dmDeviceInfo(this.poolName)
    if (pool !== undefined) this.#checkIsPool()
    let createdLoopback = false
    if (pool === undefined) {
      if (this.options.thinPoolDevice !== undefined) {
        throw new StrataError('NOT_FOUND', `The thin pool "${this.options.thinPoolDevice}" (dm.thinpooldev) does not exist`, {
          hint: 'create it first (lvcreate --type thin-pool, or dmsetup create NAME --table "0 SECTORS thin-pool META DATA 128 32768")',
          details: { pool: this.options.thinPoolDevice },
        })
      }
      createdLoopback = this.#createLoopPool()
    } else if (this.options.thinPoolDevice === undefined) {
      this.#loadLoopInfo()
    }
    if (!createdLoopback) this.#rollbackPendingTransaction()
    const set = this.#readDeviceSet()
    this.#nextDeviceId = set.next_device_id
    this.baseFs = set.BaseDeviceFilesystem === '' ? undefined : (set.BaseDeviceFilesystem as DeviceFs)
    await this.#setupBaseDevice(set)
  }

  #checkIsPool(): void {
    const type = dmTable(this.poolName)[0]?.type
    if (type !== 'thin-pool') {
      throw new StrataError('INVALID_ARGUMENT', `The device "${this.poolName}" is not a thin pool (its table is ${type === undefined ? 'empty' : `a ${type} target`})`, { details: { pool: this.poolName } })
    }
  }

  /** Creates the loop-lvm pool from `devicemapper/{data,metadata}` (made sparse if missing). True when a file was new. */
  #createLoopPool(): boolean {
    // A root that has devices lost its pool if a loop file is gone: making a fresh empty one would leave
    // every device's metadata pointing at nothing (dockerd would do it and fail later, device by device).
    if (this.lookup('') !== undefined) {
      for (const file of [this.layout.dataFile, this.layout.metadataFile]) {
        if (!pathExists(file)) {
          throw new StrataError('NOT_FOUND', `The thin pool "${this.poolName}" of this data root is missing: its loop file "${file}" does not exist, but "${this.layout.metadataDir}" records devices in it`, {
            hint: 'restore the loop file, or remove the devicemapper/ directory to start an empty store',
            details: { pool: this.poolName, path: file },
          })
        }
      }
    }
    ensureDir(this.layout.loopbackDir, LOOPBACK_DIR_MODE)
    const newData = ensureImage(this.layout.dataFile, this.options.loopDataSize)
    const newMeta = ensureImage(this.layout.metadataFile, this.options.loopMetadataSize)
    let data: LoopDevice | undefined
    let meta: LoopDevice | undefined
    try {
      data = findLoopDevice(this.layout.dataFile) ?? attachLoopDevice(this.layout.dataFile, { flags: LO_FLAGS_AUTOCLEAR })
      meta = findLoopDevice(this.layout.metadataFile) ?? attachLoopDevice(this.layout.metadataFile, { flags: LO_FLAGS_AUTOCLEAR })
      const sectors = blockDeviceSize(data.fd, data.path) / 512n
      dmCreateDevice(this.poolName)
      try {
        const params = `${meta.path} ${data.path} ${this.options.blockSizeSectors} ${LOW_WATER_MARK} 2 skip_block_zeroing error_if_no_space`
        dmLoadTable(this.poolName, [{ start: 0n, length: sectors, type: 'thin-pool', params }])
        dmResume(this.poolName)
      } catch (err) {
        dmRemoveDevice(this.poolName)
        throw err
      }
      this.dataLoop = { device: data.path, file: this.layout.dataFile }
      this.metadataLoop = { device: meta.path, file: this.layout.metadataFile }
      this.poolCreatedHere = true
    } catch (err) {
      if (err instanceof StrataError) throw err
      throw new StrataError('SYSCALL', `Cannot set up the thin pool "${this.poolName}" on "${this.layout.loopbackDir}": ${(err as Error).message}`, {
        cause: err,
        details: { pool: this.poolName },
      })
    } finally {
      // The pool holds the loop devices now; with autoclear they go when it does.
      data?.close()
      meta?.close()
    }
    return newData || newMeta
  }

  /** For a pool that exists already: which of its devices are our loop files. */
  #loadLoopInfo(): void {
    const params = dmTable(this.poolName)[0]?.params ?? ''
    const [metaDev, dataDev] = params.split(' ')
    for (const [file, dev, key] of [
      [this.layout.dataFile, dataDev, 'dataLoop'],
      [this.layout.metadataFile, metaDev, 'metadataLoop'],
    ] as const) {
      let loop: LoopDevice | undefined
      try {
        loop = findLoopDevice(file)
      } catch (err) {
        if (isErrno(err, 'ENOENT')) continue
        throw err
      }
      if (loop === undefined) continue
      try {
        const st = statSync(loop.path)
        if (`${devMajor(st.rdev)}:${devMinor(st.rdev)}` === dev) this[key] = { device: loop.path, file }
      } finally {
        loop.close()
      }
    }
  }

  /** The pool's status line, parsed. */
  poolStatus(): PoolStatus {
    const line = dmStatus(this.poolName)[0]
    if (line === undefined || line.type !== 'thin-pool') throw new StrataError('CORRUPT', `The thin pool "${this.poolName}" reports no thin-pool status`)
    return parsePoolStatus(line.params, line.length, this.poolName)
  }

  // ---------------------------------------------------------------------
  // Metadata files

  #readDeviceSet(): DeviceSetRecord {
    let raw: unknown
    try {
      raw = readJson(this.layout.deviceSetFile)
    } catch (err) {
      throw new StrataError('CORRUPT', `Cannot read "${this.layout.deviceSetFile}": ${(err as Error).message}`, { cause: err })
    }
    const r = (raw ?? {}) as Partial<DeviceSetRecord>
    return {
      next_device_id: typeof r.next_device_id === 'number' ? r.next_device_id : 0,
      BaseDeviceUUID: typeof r.BaseDeviceUUID === 'string' ? r.BaseDeviceUUID : '',
      BaseDeviceFilesystem: typeof r.BaseDeviceFilesystem === 'string' ? r.BaseDeviceFilesystem : '',
    }
  }

  #writeDeviceSet(r: DeviceSetRecord): void {
    writeMetaFile(this.layout.deviceSetFile, encodeDeviceSetRecord(r))
  }

  /**
   * The device `hash` from its metadata file; undefined when it has none.
   * A file that does not parse, or holds an impossible device id, is CORRUPT
   * naming the file (dockerd silently treats it as missing).
   */
  lookup(hash: string): DeviceInfo | undefined {
    const path = this.layout.deviceFile(hash)
    let raw: unknown
    try {
      raw = readJson(path)
    } catch (err) {
      throw new StrataError('CORRUPT', `The metadata of device "${hash || 'base'}" ("${path}") is not valid JSON: ${(err as Error).message}`, { cause: err, details: { path } })
    }
    if (raw === undefined) return undefined
    const r = raw as Partial<DeviceRecord>
    if (typeof r !== 'object' || r === null || !Number.isInteger(r.device_id) || r.device_id! < 0 || r.device_id! > MAX_DEVICE_ID || typeof r.size !== 'number' || r.size <= 0) {
      throw new StrataError('CORRUPT', `The metadata of device "${hash || 'base'}" ("${path}") has no valid device_id and size`, { details: { path } })
    }
    return {
      hash,
      name: deviceName(this.prefix, hash),
      device_id: r.device_id!,
      size: r.size,
      transaction_id: typeof r.transaction_id === 'number' ? r.transaction_id : 0,
      initialized: r.initialized === true,
      deleted: r.deleted === true,
    }
  }

  /** Like lookup, but NOT_FOUND naming the layer when there is no such device. */
  #require(hash: string, what = `Layer "${hash}"`): DeviceInfo {
    const info = this.lookup(hash)
    if (info === undefined) throw new StrataError('NOT_FOUND', `${what} does not exist (no device metadata "${this.layout.deviceFile(hash)}")`)
    return info
  }

  #saveDevice(info: DeviceInfo): void {
    writeMetaFile(this.layout.deviceFile(info.hash), encodeDeviceRecord(info))
  }

  /** Hashes of every device with a metadata file (deleted ones included). */
  listHashes(): string[] {
    let names: string[]
    try {
      names = readdirSync(this.layout.metadataDir)
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return []
      throw err
    }
    return names.filter(isDeviceFileName).map(hashOfFileName)
  }

  /** The thin ids in use by some metadata file (unreadable files are skipped: their id is unknown). */
  #usedIds(): Set<number> {
    const used = new Set<number>()
    for (const hash of this.listHashes()) {
      try {
        const info = this.lookup(hash)
        if (info !== undefined) used.add(info.device_id)
      } catch {
        // a corrupt file: check() reports it
      }
    }
    return used
  }

  // ---------------------------------------------------------------------
  // Transactions

  #readTransaction(): TransactionRecord | undefined {
    let raw: unknown
    try {
      raw = readJson(this.layout.transactionFile)
    } catch {
      return undefined // dockerd ignores an unreadable record too
    }
    if (raw === undefined) return undefined
    const r = raw as Partial<TransactionRecord>
    return { open_transaction_id: Number(r.open_transaction_id ?? 0), device_hash: String(r.device_hash ?? ''), device_id: Number(r.device_id ?? 0) }
  }

  /**
   * dockerd's processPendingTransaction: a recorded transaction newer than
   * the pool's was never closed; undo it (the thin id may or may not exist
   * in the pool; the metadata file may or may not have been written).
   */
  #rollbackPendingTransaction(): void {
    const pending = this.#readTransaction()
    if (pending === undefined) return
    const poolTx = this.poolStatus().transactionId
    if (pending.open_transaction_id <= poolTx) return
    try {
      dmMessage(this.poolName, `delete ${pending.device_id}`)
    } catch (err) {
      // Never created, or already deleted: nothing to undo in the pool.
      if (!(err instanceof SysError && (err.code === 'ENODATA' || err.code === 'EINVAL' || err.code === 'ENOENT'))) throw syscallError(err, `Cannot roll back the open transaction on "${this.poolName}"`)
    }
    rmSync(this.layout.deviceFile(pending.device_hash), { force: true })
    rmSync(this.layout.transactionFile, { force: true })
  }

  /** Opens a transaction: the pool's id + 1, recorded before anything changes. Returns its id. */
  #openTransaction(hash: string, deviceId: number): number {
    const id = this.poolStatus().transactionId + 1
    writeMetaFile(this.layout.transactionFile, encodeTransactionRecord({ open_transaction_id: id, device_hash: hash, device_id: deviceId }))
    return id
  }

  /** Closes it: the pool's transaction id moves to the recorded one. */
  #closeTransaction(id: number): void {
    dmMessage(this.poolName, `set_transaction_id ${id - 1} ${id}`)
  }

  // ---------------------------------------------------------------------
  // Devices

  /** Whether the layer (or "" for the base device) has a device (deleted ones count, as dockerd's HasDevice). */
  hasDevice(hash: string): boolean {
    return this.lookup(hash) !== undefined
  }

  /**
   * A free thin id: counting on from next_device_id, skipping ids metadata
   * files hold. The counter is written to deviceset-metadata at shutdown,
   * as dockerd does; another process's ids are found in the metadata files,
   * and an id the pool has without a file (EEXIST) is skipped by the caller.
   */
  #nextFreeId(used: Set<number>): number {
    let id = this.#nextDeviceId
    for (let i = 0; i <= MAX_DEVICE_ID; i++) {
      id = (id + 1) & MAX_DEVICE_ID
      if (id !== 0 && !used.has(id)) {
        this.#nextDeviceId = id
        used.add(id)
        return id
      }
    }
    throw new StrataError('INVALID_ARGUMENT', `The thin pool "${this.poolName}" has no free device id left`)
  }

  /**
   * One pool message in a transaction, with the device's metadata written
   * between message and close. `message(id)` is create_thin or create_snap;
   * an id the pool already has (EEXIST, a device the metadata does not
   * know) is skipped for the next, as dockerd does.
   */
  #createInTransaction(hash: string, size: number, message: (id: number) => string): DeviceInfo {
    const used = this.#usedIds()
    let deviceId = this.#nextFreeId(used)
    const tx = this.#openTransaction(hash, deviceId)
    for (;;) {
      try {
        dmMessage(this.poolName, message(deviceId))
        break
      } catch (err) {
        if (err instanceof SysError && err.code === 'EEXIST') {
          deviceId = this.#nextFreeId(used)
          writeMetaFile(this.layout.transactionFile, encodeTransactionRecord({ open_transaction_id: tx, device_hash: hash, device_id: deviceId }))
          continue
        }
        rmSync(this.layout.transactionFile, { force: true })
        throw this.#poolError(err, `Cannot create the device of layer "${hash || 'base'}" in the thin pool "${this.poolName}"`)
      }
    }
    // A failpoint for the crash test: the process dies with the thin device in the pool and no metadata file.
    if (process.env.STRATA_DM_FAILPOINT === 'after-pool-message') process.kill(process.pid, 'SIGKILL')
    const info: DeviceInfo = { hash, name: deviceName(this.prefix, hash), device_id: deviceId, size, transaction_id: tx, initialized: false, deleted: false }
    try {
      this.#saveDevice(info)
      this.#closeTransaction(tx)
    } catch (err) {
      // Undo now rather than leaving it to the next open.
      try {
        dmMessage(this.poolName, `delete ${deviceId}`)
      } catch {
        // the next open's rollback retries
      }
      rmSync(this.layout.deviceFile(hash), { force: true })
      throw this.#poolError(err, `Cannot record the device of layer "${hash || 'base'}"`)
    }
    return info
  }

  /** A pool error, with the pool's usage when it is out of space. */
  #poolError(err: unknown, message: string): StrataError {
    if (err instanceof StrataError) return err
    if (err instanceof SysError && err.code === 'ENOSPC') return this.fullError(err, message)
    return syscallError(err, message)
  }

  /** SYSCALL/ENOSPC naming the pool and its usage. */
  fullError(cause: unknown, message: string): StrataError {
    let usage = ''
    try {
      usage = `: ${this.describeUsage()}`
    } catch {
      // status unreadable: the message without usage
    }
    return new StrataError('SYSCALL', `${message}: the thin pool "${this.poolName}" is out of space${usage}`, {
      cause,
      hint: 'remove images or containers, or give the pool more room (dm.loopdatasize / dm.loopmetadatasize, or extend the pool)',
      details: { errno: 'ENOSPC', pool: this.poolName },
    })
  }

  /** "data 1.00 GiB of 1.00 GiB used, metadata 0.01 GiB of 0.06 GiB used" */
  describeUsage(): string {
    const s = this.poolStatus()
    return `data ${gib(s.dataUsedBytes)} of ${gib(s.dataTotalBytes)} used, metadata ${gib(s.metadataUsedBytes)} of ${gib(s.metadataTotalBytes)} used${s.outOfDataSpace ? ' (out of data space)' : ''}`
  }

  /** True when the pool has run out of data or metadata space. */
  isFull(): boolean {
    try {
      const s = this.poolStatus()
      return s.outOfDataSpace || s.readOnly || s.dataUsed >= s.dataTotal || s.metadataUsed >= s.metadataTotal
    } catch {
      return false
    }
  }

  /** dockerd's poolHasFreeSpace: a create must leave dm.min_free_space of data and metadata free. */
  #checkFreeSpace(hash: string): void {
    const pct = this.options.minFreeSpacePercent
    if (pct === 0) return
    const s = this.poolStatus()
    const minData = Math.max(1, Math.floor((s.dataTotal * pct) / 100))
    const minMeta = Math.max(1, Math.floor((s.metadataTotal * pct) / 100))
    if (s.dataTotal - s.dataUsed < minData || s.metadataTotal - s.metadataUsed < minMeta) {
      throw this.fullError(undefined, `Cannot create the device of layer "${hash}": less than dm.min_free_space=${pct}% of the pool is free`)
    }
  }

  /** Creates `hash` as a snapshot of `baseHash` ("" for the base device), of the base's size or `size`. */
  async addDevice(hash: string, baseHash: string, size?: number): Promise<void> {
    await this.#exclusive(async () => {
      const base = this.#require(baseHash, baseHash === '' ? 'The base device' : `Parent layer "${baseHash}"`)
      if (base.deleted) throw new StrataError('NOT_FOUND', `Cannot create layer "${hash}": its parent "${baseHash}" is being deleted`)
      const existing = this.lookup(hash)
      if (existing !== undefined) {
        throw new StrataError('ALREADY_EXISTS', `Cannot create layer "${hash}": it already exists${existing.deleted ? ' (marked for deferred deletion)' : ''}`)
      }
      const devSize = size ?? base.size
      if (devSize < base.size) throw new StrataError('INVALID_ARGUMENT', `Cannot create layer "${hash}": size ${devSize} is smaller than its parent's ${base.size}`)
      if (devSize > base.size) throw new StrataError('NOT_SUPPORTED', `Cannot create layer "${hash}" bigger than its parent: growing a thin device's filesystem is not supported by strata`)
      this.#checkFreeSpace(hash)
      // A pending deferred removal of the origin is cancelled for the snapshot, and redone after it.
      let origin = dmDeviceInfo(base.name)
      let redoRemoval = false
      if (origin?.deferredRemove === true) {
        try {
          dmCancelDeferredRemove(base.name)
          redoRemoval = true
        } catch (err) {
          if (!(err instanceof SysError && err.code === 'ENXIO')) throw syscallError(err, `Cannot cancel the deferred removal of "${base.name}"`)
          origin = undefined
        }
      }
      // An active origin is suspended while it is snapshotted, so the snapshot is consistent.
      const suspend = origin !== undefined
      if (suspend) dmSuspend(base.name)
      try {
        this.#createInTransaction(hash, devSize, (id) => `create_snap ${id} ${base.device_id}`)
      } finally {
        if (suspend) dmResume(base.name)
        if (redoRemoval) this.#deactivate(base)
      }
    })
  }

  /** Makes the device usable at /dev/mapper/<name> (cancelling a pending deferred removal). */
  #activate(info: DeviceInfo, ignoreDeleted = false): DmDeviceInfo {
    if (info.deleted && !ignoreDeleted) throw new StrataError('NOT_FOUND', `Layer "${info.hash}" is marked for deletion and cannot be used`)
    const existing = dmDeviceInfo(info.name)
    if (existing !== undefined) {
      if (existing.deferredRemove) {
        try {
          dmCancelDeferredRemove(info.name)
        } catch (err) {
          if (!(err instanceof SysError && err.code === 'ENXIO')) throw syscallError(err, `Cannot cancel the deferred removal of "${info.name}"`)
          return this.#activate(info, ignoreDeleted)
        }
      }
      return dmDeviceInfo(info.name) ?? existing
    }
    const pool = dmDeviceInfo(this.poolName)
    if (pool === undefined) throw new StrataError('NOT_FOUND', `The thin pool "${this.poolName}" is gone`)
    dmCreateDevice(info.name)
    try {
      dmLoadTable(info.name, [{ start: 0n, length: BigInt(info.size) / 512n, type: 'thin', params: `${pool.major}:${pool.minor} ${info.device_id}` }])
      return dmResume(info.name)
    } catch (err) {
      try {
        dmRemoveDevice(info.name)
      } catch {
        // best effort; the error below is what matters
      }
      if (err instanceof SysError && err.code === 'ENODATA') {
        throw new StrataError('CORRUPT', `The device of layer "${info.hash || 'base'}" (thin id ${info.device_id}) is missing from the thin pool "${this.poolName}"`, { cause: err })
      }
      throw syscallError(err, `Cannot activate the device of layer "${info.hash || 'base'}" ("${info.name}")`)
    }
  }

  /** Removes the dm device (deferred when enabled: it goes when its last opener closes it). Gone already is fine. */
  #deactivate(info: DeviceInfo, deferred = this.deferredRemove): void {
    if (dmDeviceInfo(info.name) === undefined) return
    for (let i = 0; ; i++) {
      try {
        dmRemoveDevice(info.name, deferred)
        return
      } catch (err) {
        if (err instanceof SysError && err.code === 'ENXIO') return
        // A device just unmounted can stay busy for a moment (dockerd retries for 20 s).
        if (err instanceof SysError && err.code === 'EBUSY' && i < 200) {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100)
          continue
        }
        throw syscallError(err, `Cannot deactivate the device of layer "${info.hash || 'base'}" ("${info.name}")`)
      }
    }
  }

  /**
   * Deletes the device of `hash`: discards its blocks (dm.blkdiscard),
   * deactivates it and deletes it from the pool in a transaction. A device
   * still open elsewhere is, with deferred deletion, marked deleted and
   * retried later; otherwise IN_USE.
   */
  async deleteDevice(hash: string, syncDelete = false): Promise<void> {
    await this.#exclusive(async () => {
      const info = this.#require(hash)
      await this.#deleteLocked(info, syncDelete)
    })
  }

  async #deleteLocked(info: DeviceInfo, syncDelete: boolean): Promise<void> {
    if (this.options.blkDiscard) {
      try {
        const dev = this.#activate(info, true)
        if (dev.openCount === 0) discardBlockDevice(dmDevicePath(info.name))
      } catch {
        // dockerd ignores discard failures too: it is an optimisation
      }
    }
    // Deferred removal here only together with deferred deletion (dockerd: else wait for the device).
    try {
      this.#deactivate(info, this.deferredRemove && this.deferredDelete)
    } catch (err) {
      if (isErrno((err as StrataError).cause, 'EBUSY')) throw new StrataError('IN_USE', `Cannot remove layer "${info.hash}": its device "${info.name}" is open`, { cause: err })
      throw err
    }
    const tx = this.#openTransaction(info.hash, info.device_id)
    let busy = false
    try {
      dmMessage(this.poolName, `delete ${info.device_id}`)
    } catch (err) {
      if (err instanceof SysError && (err.code === 'ENODATA' || err.code === 'ENOENT')) {
        // Not in the pool (a crash after the delete, or a device never created): the metadata goes anyway.
      } else if (err instanceof SysError && err.code === 'EBUSY' && !syncDelete && this.deferredDelete) {
        busy = true
      } else {
        this.#closeTransaction(tx)
        if (err instanceof SysError && err.code === 'EBUSY') throw new StrataError('IN_USE', `Cannot remove layer "${info.hash}": its device is busy in the pool "${this.poolName}"`, { cause: err })
        throw this.#poolError(err, `Cannot delete the device of layer "${info.hash || 'base'}" from the pool "${this.poolName}"`)
      }
    }
    if (busy) {
      info.deleted = true
      this.#saveDevice(info)
    } else {
      rmSync(this.layout.deviceFile(info.hash), { force: true })
    }
    this.#closeTransaction(tx)
  }

  /** Retries the deletion of devices marked deleted (dockerd's deletion worker, here once per open). */
  async cleanupDeletedDevices(): Promise<void> {
    for (const hash of this.listHashes()) {
      let info: DeviceInfo | undefined
      try {
        info = this.lookup(hash)
      } catch {
        continue
      }
      if (info?.deleted !== true) continue
      await this.#exclusive(() => this.#deleteLocked(info!, false)).catch(() => undefined)
    }
  }

  /** Activates the device and mounts its filesystem on `path` (xfs with nouuid: every snapshot has the base's UUID). */
  async mountDevice(hash: string, path: string): Promise<void> {
    await this.#exclusive(async () => {
      const info = this.#require(hash)
      if (info.deleted) throw new StrataError('NOT_FOUND', `Layer "${hash}" is marked for deletion and cannot be mounted`)
      this.#activate(info)
      const dev = dmDevicePath(info.name)
      const probed = probeFilesystem(dev)
      if (probed === undefined) throw new StrataError('CORRUPT', `The device of layer "${hash}" ("${dev}") holds no xfs or ext4 filesystem`)
      const opts = [probed.fs === 'xfs' ? 'nouuid' : '', this.options.mountOptions].filter((o) => o !== '').join(',')
      try {
        mount(dev, path, probed.fs, 0, opts === '' ? null : opts)
      } catch (err) {
        this.#deactivate(info)
        throw syscallError(err, `Cannot mount "${dev}" (layer "${hash}") on "${path}"`)
      }
    })
  }

  /** Unmounts `path` (lazily, as dockerd) and deactivates the device. */
  async unmountDevice(hash: string, path: string): Promise<void> {
    await this.#exclusive(async () => {
      const info = this.#require(hash)
      try {
        umount2(path, MNT_DETACH)
      } catch (err) {
        if (!isErrno(err, 'EINVAL', 'ENOENT')) throw syscallError(err, `Cannot unmount "${path}" (layer "${hash}")`)
      }
      this.#deactivate(info)
    })
  }

  /** DeviceId, DeviceSize, DeviceName: what docker inspect shows for a devicemapper layer. */
  deviceMetadata(hash: string): Record<string, string> {
    const info = this.#require(hash)
    return { DeviceId: String(info.device_id), DeviceSize: String(info.size), DeviceName: info.name }
  }

  // ---------------------------------------------------------------------
  // Base device

  async #setupBaseDevice(set: DeviceSetRecord): Promise<void> {
    const old = this.lookup('')
    if (old !== undefined && old.initialized && !old.deleted) {
      await this.#verifyBase(old, set)
      return
    }
    if (old !== undefined) await this.#deleteLocked(old, true)
    if (this.options.thinPoolDevice !== undefined && old === undefined) {
      // Taking over a pool: it must be empty, or it belongs to another data root.
      const s = this.poolStatus()
      if (s.dataUsed !== 0 || s.transactionId !== 0) {
        throw new StrataError('IN_USE', `The thin pool "${this.poolName}" is already in use (transaction id ${s.transactionId}, ${s.dataUsed} data blocks used) and this data root has no base device in it; another data root probably owns it`, {
          details: { pool: this.poolName, transactionId: s.transactionId, dataUsed: s.dataUsed },
        })
      }
    }
    await this.#createBase(set)
  }

  async #createBase(set: DeviceSetRecord): Promise<void> {
    const info = this.#createInTransaction('', this.options.baseSize, (id) => `create_thin ${id}`)
    const fs = this.options.fs ?? (await defaultFilesystem())
    set.next_device_id = this.#nextDeviceId
    set.BaseDeviceFilesystem = fs
    this.#writeDeviceSet(set)
    this.#activate(info)
    try {
      await makeFilesystem(fs, dmDevicePath(info.name), this.options.mkfsArgs)
      info.initialized = true
      this.#saveDevice(info)
      const probed = probeFilesystem(dmDevicePath(info.name))
      set.BaseDeviceUUID = probed?.uuid ?? ''
      set.BaseDeviceFilesystem = fs
      this.#writeDeviceSet(set)
      this.baseFs = fs
    } finally {
      this.#deactivate(info)
    }
  }

  /** The base device must be the one this root made: its filesystem UUID is recorded (a different pool would have another). */
  async #verifyBase(base: DeviceInfo, set: DeviceSetRecord): Promise<void> {
    if (this.options.baseSizeGiven && this.options.baseSize < base.size) {
      throw new StrataError('INVALID_ARGUMENT', `dm.basesize ${this.options.baseSize} is smaller than the existing base device's size ${base.size}`)
    }
    if (this.options.baseSizeGiven && this.options.baseSize > base.size) {
      throw new StrataError('NOT_SUPPORTED', `Growing the base device to dm.basesize ${this.options.baseSize} (now ${base.size}) is not supported by strata`)
    }
    const wasActive = dmDeviceInfo(base.name) !== undefined
    let probed
    try {
      this.#activate(base)
      probed = probeFilesystem(dmDevicePath(base.name))
    } finally {
      if (!wasActive) this.#deactivate(base)
    }
    if (probed === undefined) {
      throw new StrataError('CORRUPT', `The base device "${base.name}" in the pool "${this.poolName}" holds no filesystem (unformatted, or the pool is not this data root's)`, {
        details: { pool: this.poolName },
      })
    }
    if (set.BaseDeviceUUID === '') {
      set.BaseDeviceUUID = probed.uuid
      set.BaseDeviceFilesystem = probed.fs
      this.#writeDeviceSet(set)
    } else if (set.BaseDeviceUUID !== probed.uuid) {
      throw new StrataError('IN_USE', `The base device in the thin pool "${this.poolName}" has the filesystem UUID ${probed.uuid}, not ${set.BaseDeviceUUID} as recorded: the pool is not this data root's (possibly another root's pool)`, {
        details: { pool: this.poolName, uuid: probed.uuid, recorded: set.BaseDeviceUUID },
      })
    }
    if (set.BaseDeviceFilesystem === '') {
      set.BaseDeviceFilesystem = probed.fs
      this.#writeDeviceSet(set)
    }
    this.baseFs = probed.fs
  }

  // ---------------------------------------------------------------------
  // Status, check, shutdown

  /** The "Storage Driver" lines of docker info, in dockerd 20.10's order. */
  statusLines(): Array<[string, string]> {
    const lines: Array<[string, string]> = [['Pool Name', this.poolName]]
    let s: PoolStatus | undefined
    try {
      s = this.poolStatus()
    } catch {
      s = undefined
    }
    const base = (() => {
      try {
        return this.lookup('')
      } catch {
        return undefined
      }
    })()
    if (s !== undefined) lines.push(['Pool Blocksize', humanSize(s.blockBytes)])
    lines.push(['Base Device Size', humanSize(base?.size ?? 0)])
    lines.push(['Backing Filesystem', this.baseFs ?? ''])
    lines.push(['Udev Sync Supported', 'false'])
    if (this.dataLoop !== undefined) lines.push(['Data file', this.dataLoop.device])
    if (this.metadataLoop !== undefined) lines.push(['Metadata file', this.metadataLoop.device])
    if (s !== undefined) {
      const dataAvail = Math.min(s.dataTotalBytes - s.dataUsedBytes, this.#spaceUnder(this.dataLoop?.file) ?? Infinity)
      const metaAvail = Math.min(s.metadataTotalBytes - s.metadataUsedBytes, this.#spaceUnder(this.metadataLoop?.file) ?? Infinity)
      lines.push(['Data Space Used', humanSize(s.dataUsedBytes)])
      lines.push(['Data Space Total', humanSize(s.dataTotalBytes)])
      lines.push(['Data Space Available', humanSize(dataAvail)])
      lines.push(['Metadata Space Used', humanSize(s.metadataUsedBytes)])
      lines.push(['Metadata Space Total', humanSize(s.metadataTotalBytes)])
      lines.push(['Metadata Space Available', humanSize(metaAvail)])
      lines.push(['Thin Pool Minimum Free Space', humanSize(Math.floor((s.dataTotal * this.options.minFreeSpacePercent) / 100) * s.blockBytes)])
    }
    lines.push(['Deferred Removal Enabled', String(this.deferredRemove)])
    lines.push(['Deferred Deletion Enabled', String(this.deferredDelete)])
    lines.push(['Deferred Deleted Device Count', String(this.#deletedCount())])
    if (this.dataLoop !== undefined) lines.push(['Data loop file', this.dataLoop.file])
    if (this.metadataLoop !== undefined) lines.push(['Metadata loop file', this.metadataLoop.file])
    lines.push(['Kernel Driver Version', this.driverVersion.join('.')])
    return lines
  }

  #deletedCount(): number {
    let n = 0
    for (const hash of this.listHashes()) {
      try {
        if (this.lookup(hash)?.deleted === true) n++
      } catch {
        // corrupt: not counted
      }
    }
    return n
  }

  /** Free bytes of the filesystem holding a loop file (a sparse file can only grow into what is left there). */
  #spaceUnder(file: string | undefined): number | undefined {
    if (file === undefined) return undefined
    try {
      const st = statfsSync(file)
      return st.bfree * st.bsize
    } catch {
      return undefined
    }
  }

  /**
   * Checks the pool against the metadata files: the pool is a thin pool,
   * no transaction is left open, every metadata file parses, no two share
   * a thin id, and every device's thin id exists in the pool (activating
   * it, as a table load fails for an id the pool lacks).
   */
  async check(): Promise<DeviceSetProblem[]> {
    return this.#exclusive(async () => {
      const problems: DeviceSetProblem[] = []
      let status: PoolStatus
      try {
        this.#checkIsPool()
        status = this.poolStatus()
      } catch (err) {
        problems.push({ kind: 'pool', subject: this.poolName, message: (err as Error).message })
        return problems
      }
      if (status.needsCheck) problems.push({ kind: 'pool', subject: this.poolName, message: `The thin pool "${this.poolName}" has its needs_check flag set (run thin_check on its metadata device)` })
      const pending = this.#readTransaction()
      if (pending !== undefined && pending.open_transaction_id > status.transactionId) {
        problems.push({ kind: 'transaction', subject: pending.device_hash, message: `Transaction ${pending.open_transaction_id} (device "${pending.device_hash || 'base'}", thin id ${pending.device_id}) is open; the pool is at ${status.transactionId}` })
      }
      const ids = new Map<number, string>()
      for (const hash of this.listHashes()) {
        let info: DeviceInfo | undefined
        try {
          info = this.lookup(hash)
        } catch (err) {
          problems.push({ kind: 'device-metadata', subject: hash || 'base', message: (err as Error).message })
          continue
        }
        if (info === undefined) continue
        const other = ids.get(info.device_id)
        if (other !== undefined) {
          problems.push({ kind: 'duplicate-id', subject: hash || 'base', message: `Devices "${other || 'base'}" and "${hash || 'base'}" both claim thin id ${info.device_id}` })
          continue
        }
        ids.set(info.device_id, hash)
        if (info.deleted) continue
        const wasActive = dmDeviceInfo(info.name) !== undefined
        try {
          this.#activate(info)
        } catch (err) {
          problems.push({ kind: 'device-missing', subject: hash || 'base', message: (err as Error).message })
          continue
        }
        if (!wasActive) this.#deactivate(info, false)
      }
      return problems
    })
  }

  /** Removes the pool when this data root made it on loop files and nothing uses it now (the loop devices then detach). */
  async shutdown(): Promise<void> {
    await this.#exclusive(async () => {
      const set = this.#readDeviceSet()
      if (this.#nextDeviceId > set.next_device_id) this.#writeDeviceSet({ ...set, next_device_id: this.#nextDeviceId })
      if (this.options.thinPoolDevice !== undefined) return
      const base = this.lookup('')
      if (base !== undefined) this.#deactivate(base, false)
      const pool = dmDeviceInfo(this.poolName)
      if (pool === undefined || pool.openCount > 0) return
      try {
        dmRemoveDevice(this.poolName)
      } catch (err) {
        if (!(err instanceof SysError && (err.code === 'EBUSY' || err.code === 'ENXIO'))) throw syscallError(err, `Cannot remove the thin pool "${this.poolName}"`)
      }
    })
  }
}


function pathExists(path: string): boolean {
  try {
    statSync(path)
    return true
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false
    throw err
  }
}

/** mkdir with exactly `mode` when it has to create it (an existing dir keeps its mode). */
function ensureDir(path: string, mode: number): void {
  try {
    mkdirSync(path, mode)
    chmodSync(path, mode)
  } catch (err) {
    if (!isErrno(err, 'EEXIST')) throw err
  }
}

/** dockerd's ensureImage: a sparse file of `size` bytes, grown (never shrunk) if smaller. True when it was created. */
function ensureImage(path: string, size: number): boolean {
  try {
    const st = statSync(path)
    if (st.size < size) truncateSync(path, size)
    return false
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err
  }
  const fd = openSync(path, 'wx', LOOPBACK_FILE_MODE)
  try {
    chmodSync(path, LOOPBACK_FILE_MODE)
    // ftruncate through the path: the file is empty and ours.
    truncateSync(path, size)
  } catch (err) {
    closeSync(fd)
    unlinkSync(path)
    throw err
  }
  closeSync(fd)
  return true
}

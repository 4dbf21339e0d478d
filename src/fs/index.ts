/**
 * src/fs: the data root's plumbing, one place for each: how a file is
 * replaced atomically, the one temp-name convention and the sweep of what
 * an interrupted write left (temp.ts), existence and reads that tell
 * "absent" from "broken", durable writes and directory fsync, the locks
 * between processes (data-root lock, directory locks) and inside one
 * (KeyedLock, moby's pkg/locker), and the Go encodings dockerd's files
 * and output use (time formats, encoding/json).
 *
 * Every file's header documents its API. Stores, drivers and verbs use
 * these instead of writing their own: a second atomic write or a second
 * temp-name convention is a second recovery to keep right.
 */
export { fsyncInOneRound, fsyncPath, pathExists, readIfExists, readTextIfExists, writeFileDurable, writeFileWithMode } from './files.js'
export { atomicWriteFile } from './atomic.js'
export { TEMP_PREFIX, isTempName, sweepTempFiles, tempPathFor } from './temp.js'
export { refuseSpecialTarget, specialFileKind, type SpecialFileKind } from './special.js'
export { DATA_ROOT_LOCK_FILE, DataRootLock, DirLock, FileLock, type StoreLock } from './lock.js'
export { KeyedLock } from './keyed-lock.js'
export { makeOwnedDir, ownerAlive, ownerTag, sweepOwnedEntries, tagOf, type OwnedDir, type SweepOptions } from './owned.js'
export {
  GO_ZERO_TIME,
  GO_ZERO_TIME_UNIX,
  RFC3339_NANO_RE,
  formatRfc3339Nano,
  goRfc3339,
  goRfc3339Nano,
  goTimeString,
  localOffsetMinutes,
  nowNs,
  unixSeconds,
} from './gotime.js'
export { goJsonMap, goJsonString, goJsonText, goStringCompare } from './gojson.js'

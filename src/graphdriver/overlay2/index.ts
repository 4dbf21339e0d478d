/** The overlay2 graph driver: dockerd 20.10's layout, mounts up to 500 lowers, native diff. */
export { Overlay2Driver, overlay2Factory } from './driver.js'
export { directorySize } from './size.js'
export { mountEntries, parseMountInfo, type MountEntry } from './mounts.js'
export {
  COMMITTED_FILE,
  DIFF_DIR,
  DRIVER_NAME,
  LEGACY_MAX_LOWERS,
  LINK_DIR,
  LINK_FILE,
  LOWER_FILE,
  MAX_LOWERS,
  MERGED_DIR,
  PAGE_SIZE,
  SHORT_ID_LENGTH,
  WORK_DIR,
  generateShortId,
  isShortId,
  linkTarget,
  lowerEntry,
  lowerString,
  mountPlan,
  parseLower,
  validateLayerId,
  type MountPlan,
  type MountPlanOptions,
} from './layout.js'
export { dockerFsName, probeOverlay2 } from './checks.js'
export { supportsDType } from './dtype.js'

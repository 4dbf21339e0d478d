/** The aufs graph driver: dockerd 20.10's layout, mounted through the kernel's aufs or fuse-overlayfs, diffs from the branch. */
export { AufsDriver, aufsFactory, probeAufs } from './driver.js'
export {
  DIFF_DIR,
  DRIVER_NAME,
  FUSE_WORK_DIR,
  LAYERS_DIR,
  MNT_DIR,
  WH_BASE,
  WH_BASE_MODE,
  WH_META_DIR_MODE,
  WH_ORPH_DIR,
  WH_PLINK_DIR,
  aufsMountPlan,
  fuseOverlayfsArgs,
  layersFileContent,
  parseLayersFile,
  validateLayerId,
  type AufsMountPlan,
  type AufsMountPlanOptions,
} from './layout.js'
export { fuseOverlayfsPath, kernelHasAufs, type MountMode } from './mount.js'

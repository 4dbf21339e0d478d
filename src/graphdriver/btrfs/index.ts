/** The btrfs graph driver: layers as btrfs subvolumes and snapshots. */
export { BtrfsDriver, btrfsFactory } from './driver.js'

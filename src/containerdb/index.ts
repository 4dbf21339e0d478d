/**
 * src/containerdb: container records (dockerd's `containers/<id>/`), the
 * store that is the one place they are read and written
 * (ContainerStore, `store.containers` of a Store), and the pieces of a
 * record: IDs, names, state and its words (docker's StateString and
 * String, state-text.ts). types.ts is the contract. The verbs that do
 * things with containers (create, start, commit, ...) are src/container.
 */
export type * from './types.js'
export { ContainerDraft, ContainerStore, imageUsers, type ContainerLayers, type ContainerStoreOptions } from './store.js'
export {
  CONFIG_FILE,
  CONTAINER_ID_RE,
  CONTAINERS_DIR,
  containerDir,
  HOSTCONFIG_FILE,
  listRecords,
  newContainerId,
  newState,
  readRecord,
  shortContainerId,
  validateContainerName,
  writeRecord,
} from './records.js'
export { bootId, isMonitorAlive, isMonitorInfoAlive, MONITOR_FILE, monitorFilePath, processStartTime, readMonitorInfo, type MonitorInfo } from './monitor-file.js'
export { humanDuration, stateName, stateStatus } from './state-text.js'

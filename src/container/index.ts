/**
 * src/container: containers without a daemon: records in
 * `<root>/containers/<id>/`, their mounted layers, and the verbs create,
 * mount/unmount, diff, export, commit, remove, and run/start via runc.
 * types.ts is the contract.
 */
export type * from './types.js'
export { createContainer } from './create.js'
export { CONFIG_FILE, containerDir, getContainer, isRuncAlive, listContainers, listRecords, shortContainerId } from './records.js'
export { containerChanges, exportContainer, formatChangeLines, mountContainer, removeContainer, unmountContainer } from './lifecycle.js'
export { commitContainer, applyChanges, EMPTY_LAYER_DIFF_ID } from './commit.js'
export { startContainer } from './runtime.js'
export { runContainer, type RunContainerOptions, type RunContainerResult } from './run.js'
export { runtimeSpec, resolveUser } from './bundle.js'
export { containersFromRecords, containersUsingImage, imageInUse } from './in-use.js'
export { filterResolvConf, hostsContent } from './init-files.js'
export { recoverContainers, type ContainerRecoveryReport } from './recover.js'
export { humanDuration, stateName, stateStatus } from './state-text.js'
export { NONE_ENDPOINT, containerStateJson, inspectContainer, readHostConfig, type ContainerInspect } from './inspect.js'

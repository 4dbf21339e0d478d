/**
 * src/container: the container verbs without a daemon: create,
 * mount/unmount, diff, export, commit, remove, inspect, and run/start via
 * runc. Records are src/containerdb's (`store.containers`: list, get,
 * update; state words); types.ts is the verbs' contract.
 */
export type * from './types.js'
export { createContainer } from './create.js'
export { containerChanges, exportContainer, formatChangeLines, mountContainer, removeContainer, unmountContainer } from './lifecycle.js'
export { commitContainer, EMPTY_LAYER_DIFF_ID } from './commit.js'
export { startContainer } from './runtime.js'
export { runContainer, type RunContainerOptions, type RunContainerResult } from './run.js'
export { runtimeSpec, resolveUser } from './bundle.js'
export { filterResolvConf, hostsContent } from './init-files.js'
export { NONE_ENDPOINT, containerStateJson, inspectContainer, readHostConfig, type ContainerInspect } from './inspect.js'
export { archiveFromContainer, extractToContainer, goFileMode, statContainerPath, type ContainerPathStat, type ExtractOptions } from './archive.js'
export { pruneContainers, type ContainersPruneReport, type PruneContainersOptions } from './prune.js'
export { CONTAINER_LIST_FILTERS, commandLine, containerSizes, containerSummary, listContainers, type ContainerSummary, type ListContainersOptions } from './list.js'

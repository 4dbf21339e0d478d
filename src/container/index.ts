/**
 * src/container: the container verbs without a daemon: create,
 * mount/unmount, diff, export, commit, remove, inspect; start, stop, kill,
 * wait, logs, restart, pause through a monitor process per container
 * (process.ts, monitor/) running it with runc. Records are src/containerdb's (`store.containers`: list, get,
 * update; state words); types.ts is the verbs' contract.
 */
export type * from './types.js'
export { createContainer } from './create.js'
export { containerChanges, exportContainer, formatChangeLines, mountContainer, removeContainer, unmountContainer } from './lifecycle.js'
export { commitContainer, EMPTY_LAYER_DIFF_ID } from './commit.js'
export {
  DEFAULT_RUNTIME,
  getContainer,
  killContainer,
  killRunc,
  parseSignal,
  pauseContainer,
  reconcileContainer,
  reconciledContainers,
  restartContainer,
  startContainer,
  stopContainer,
  waitContainer,
  type StartOptions,
  type StartResult,
  type StopOptions,
  type WaitOptions,
  type WaitResult,
} from './process.js'
export { execContainer, execTerminal, parsePsOutput, topContainer, type ExecOptions, type ExecTerminal, type TopResult } from './exec.js'
export { attachContainer, feedContainerStdin, type AttachOptions } from './attach.js'
export { attachTty, resizeContainerTty, parseDetachKeys, DetachKeyScanner, DEFAULT_DETACH_KEYS, type TtyAttachOptions, type TtyAttachment } from './tty-attach.js'
export { fixedNanoTime, logSize, parseLogLine, parseLogTime, readLogs, type LogEntry, type ReadLogsOptions } from './logs.js'
export { parseRestartPolicy, type RestartPolicy } from './monitor/restart.js'
export { runContainer, type RunContainerOptions, type RunContainerResult } from './run.js'
export { runtimeSpec, resolveUser } from './bundle.js'
export { filterResolvConf, hostsContent } from './init-files.js'
export { NONE_ENDPOINT, containerStateJson, inspectContainer, readHostConfig, type ContainerInspect } from './inspect.js'
export { archiveFromContainer, extractToContainer, goFileMode, statContainerPath, type ArchiveOptions, type ContainerPathStat, type ExtractOptions } from './archive.js'
export { pruneContainers, type ContainersPruneReport, type PruneContainersOptions } from './prune.js'
export { CONTAINER_LIST_FILTERS, commandLine, containerSizes, containerSummary, listContainers, type ContainerSummary, type ListContainersOptions } from './list.js'
export { renameContainer } from './rename.js'
export { containerStats, emptyContainerStats, summarizeStats, ZERO_TIME, type ContainerStats, type StatsSummary, type ContainerStatsOptions, type CpuStats, type MemoryStats, type BlkioStats, type BlkioEntry } from './stats.js'

/**
 * The files of a started container, in its record directory
 * `containers/<id>/` (dockerd's names where dockerd has the file):
 *
 *   <id>-json.log          the output, docker's json-file format (json-log.ts)
 *   strata-monitor.json    the monitor's PID, start time, boot ID (containerdb monitor-file.ts)
 *   strata-monitor.log     the monitor's own stderr (what went wrong, if anything)
 *   bundle/config.json     the OCI bundle runc runs (root: the mounted layer)
 *   bundle/init.pid        the container's init PID, written by runc once it runs
 *   stdin.fifo             the container's stdin while an attach -i feeds it (Config.OpenStdin)
 */
import { join } from 'node:path'
import { containerDir } from '../../containerdb/index.js'

export function logPath(root: string, id: string): string {
  return join(containerDir(root, id), `${id}-json.log`)
}

export function bundleDir(root: string, id: string): string {
  return join(containerDir(root, id), 'bundle')
}

export function pidFilePath(root: string, id: string): string {
  return join(bundleDir(root, id), 'init.pid')
}

export function monitorLogPath(root: string, id: string): string {
  return join(containerDir(root, id), 'strata-monitor.log')
}

export function stdinFifoPath(root: string, id: string): string {
  return join(containerDir(root, id), 'stdin.fifo')
}

/**
 * A started container's sockets live outside the data root, in
 * `/run/strata/containers/<id>/` (0700; gone with a reboot, as they should
 * be): a unix socket path may not exceed 107 bytes, which a data root's
 * `containers/<64 hex>/…` would pass under most roots. Here:
 *
 *   attach.sock    the monitor's attach socket for a tty container (attach-protocol.ts)
 *   console.sock   runc's --console-socket while `runc create` hands over the pty master
 */
export const RUN_ROOT = '/run/strata/containers'

export function runDir(id: string): string {
  return join(RUN_ROOT, id)
}

export function attachSocketPath(id: string): string {
  return join(runDir(id), 'attach.sock')
}

export function consoleSocketPath(id: string): string {
  return join(runDir(id), 'console.sock')
}

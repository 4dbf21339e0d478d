/**
 * Whether a container's monitor is alive: the one question every reader of
 * a record asks before believing `State.Running`.
 *
 * The monitor (src/container/monitor) writes `containers/<id>/strata-monitor.json`
 * when it starts: its PID, the process's start time in clock ticks since
 * boot (field 22 of /proc/<pid>/stat) and the boot ID. A PID alone would
 * be believed after the monitor died and the PID was reused, or after a
 * reboot; PID + start time + boot ID names one process of one boot. dockerd
 * ignores the file (it is not one of its names), so a data root stays
 * dockerd's.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { containerDir } from './records.js'

export const MONITOR_FILE = 'strata-monitor.json'

export interface MonitorInfo {
  pid: number
  /** Start time of `pid` in clock ticks after boot. */
  startTime: number
  /** /proc/sys/kernel/random/boot_id when it started. */
  bootId: string
}

export function monitorFilePath(root: string, id: string): string {
  return join(containerDir(root, id), MONITOR_FILE)
}

let cachedBootId: string | undefined

/** This boot's ID ("" where /proc does not say). */
export function bootId(): string {
  if (cachedBootId === undefined) {
    try {
      cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
    } catch {
      cachedBootId = ''
    }
  }
  return cachedBootId
}

/** Start time of process `pid` in clock ticks after boot, undefined when there is no such process. */
export function processStartTime(pid: number): number | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // The command name (field 2) is in parentheses and may hold spaces or ")": count from the last ")".
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields[0] is field 3 (state): a zombie is dead for our purpose.
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined
  const start = Number(fields[19])
  return Number.isFinite(start) ? start : undefined
}

/** The monitor file of container `id`, undefined when missing or unreadable. */
export function readMonitorInfo(root: string, id: string): MonitorInfo | undefined {
  try {
    const info = JSON.parse(readFileSync(monitorFilePath(root, id), 'utf8')) as MonitorInfo
    if (typeof info.pid !== 'number' || typeof info.startTime !== 'number' || typeof info.bootId !== 'string') return undefined
    return info
  } catch {
    return undefined
  }
}

/** Whether `info` names a live process of this boot. */
export function isMonitorInfoAlive(info: MonitorInfo | undefined): boolean {
  if (info === undefined) return false
  if (info.bootId !== bootId()) return false
  return processStartTime(info.pid) === info.startTime
}

/** Whether container `id` has a live monitor. */
export function isMonitorAlive(root: string, id: string): boolean {
  return isMonitorInfoAlive(readMonitorInfo(root, id))
}

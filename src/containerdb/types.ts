/**
 * Container records: what a container is on disk, and the store that is
 * the one place they are read and written (ContainerStore, store.ts).
 *
 * Words:
 * - A *record* is `<root>/containers/<id>/config.v2.json` (dockerd 20.10's
 *   container.Container fields where they mean something without a daemon)
 *   and `hostconfig.json`. The container's files live in its *mounted
 *   layer* `layerdb/mounts/<id>/` (src/layer): a record is published
 *   only once its mounted layer exists; the remove verb takes the layer
 *   first, then the record (a crash in between leaves a record without a
 *   layer, which a second remove finishes).
 * - A *draft* is a record being created: `containers/.tmp-<id>/`, flock'd
 *   (shared) by the creating process from before its mounted layer exists
 *   until it is published (renamed to `containers/<id>`) or abandoned.
 * - *Running* means the container's monitor (src/container/monitor, one
 *   process per started container, outliving the command that started it)
 *   is alive and the record says Running: `containers/<id>/strata-monitor.json`
 *   names the monitor by PID, start time and boot ID (monitor-file.ts),
 *   so a monitor killed or lost in a reboot never leaves a container that
 *   looks running forever. `State.Pid` is the container's init process on
 *   the host, as dockerd records it.
 *
 * Rules:
 * - Every write replaces a file atomically (src/fs atomicWriteFile) under
 *   the data-root lock: two strata processes never tear a record, and a
 *   read-modify-write (update) sees the latest record.
 * - Names are unique: publish checks it under the data-root lock. A
 *   container is found by its full ID, then its exact name (with or
 *   without the leading "/"), then a unique ID prefix, as docker's
 *   GetContainer does.
 * - A remove renames the record to `containers/.tmp-rm-<id>` under the
 *   lock before deleting it, so a crash never leaves half a record under
 *   its ID. What crashes leave (drafts nobody holds, `.tmp-rm-*`, mounted
 *   layers named like a container with neither record nor draft) is
 *   removed by recover(), which the create verb runs first.
 */
import type { ContainerConfig, ImageID } from '../image/index.js'

/** State as dockerd 20.10 records it (container.State's JSON). */
export interface ContainerState {
  Running: boolean
  Paused: boolean
  Restarting: boolean
  OOMKilled: boolean
  RemovalInProgress: boolean
  Dead: boolean
  /** The container's init process (host PID), 0 when not running. */
  Pid: number
  ExitCode: number
  Error: string
  /** RFC 3339; Go's zero time "0001-01-01T00:00:00Z" when never started. */
  StartedAt: string
  FinishedAt: string
  Health: null
}

/** config.v2.json. */
export interface ContainerRecord {
  StreamConfig: Record<string, never>
  State: ContainerState
  /** 64 hex. */
  ID: string
  Created: string
  Managed: boolean
  /** The executable (first of Entrypoint + Cmd) and the rest. */
  Path: string
  Args: string[]
  /** The image's config merged with the create options (daemon/create.go's merge). */
  Config: ContainerConfig
  /** The image ID the container was created from. */
  Image: ImageID
  /** daemon/network.Settings (the `none` network's); null in records strata wrote before it kept them. */
  NetworkSettings: Record<string, unknown> | null
  LogPath: string
  /** "/name". */
  Name: string
  Driver: string
  OS: string
  MountLabel: string
  ProcessLabel: string
  RestartCount: number
  HasBeenStartedBefore: boolean
  HasBeenManuallyStopped: boolean
  MountPoints: Record<string, never>
  AppArmorProfile: string
  HostnamePath: string
  HostsPath: string
  ResolvConfPath: string
  [key: string]: unknown
}

/** A container as the store returns it: the record, and whether it is running now. */
export interface Container {
  id: string
  /** Without the leading "/". */
  name: string
  record: ContainerRecord
  /** State.Running and its monitor is alive (see *Running* above). */
  running: boolean
}

/** A container that uses an image, as far as the image verbs (rmi, prune, df) need to know. */
export interface ImageUser {
  id: string
  running: boolean
}

export interface ContainerRecoveryReport {
  /** Drafts of dead creates and records of dead removes deleted (their names in containers/). */
  tempRecords: string[]
  /** Mounted layers without a container removed. */
  orphanMounts: string[]
}

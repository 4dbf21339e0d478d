/**
 * The container contract: what a container is on disk and what the verbs
 * promise. No daemon runs, so a container is its record plus its mounted
 * layer:
 *
 * - the record is `<root>/containers/<id>/config.v2.json` (dockerd 20.10's
 *   container.Container fields where they mean something without a daemon)
 *   and `hostconfig.json`; every write replaces a file atomically (temp +
 *   rename), under the data-root lock, so two strata processes never tear
 *   a record;
 * - the mounted layer is `layerdb/mounts/<id>/` (src/layer/mounts.ts): the
 *   image's top chainID, Docker's init layer with real /etc/hostname,
 *   /etc/hosts and /etc/resolv.conf content, and the RW layer.
 *
 * Lifecycle: create (mount record first, then the container record: a
 * record always has its layer) → start/run (mount, runc, unmount) → commit
 * / diff / export at any time → remove (record first, then the layer).
 *
 * "Running" means a runc process started by a strata process is alive: the
 * record holds the runc process's PID, and a reader checks that the PID
 * still names that runc (/proc/<pid>/cmdline holds the container ID), so a
 * crashed runner never leaves a container that looks running forever.
 *
 * Names: a container is found by its full ID, a unique ID prefix, or its
 * name (with or without the leading "/"), as docker's GetContainer does
 * (full ID, then name, then prefix).
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
  /** PID of the runc process running the container, 0 when not running. */
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
  NetworkSettings: null
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

/** A container as the verbs return it: the record, and whether it is running now. */
export interface Container {
  id: string
  /** Without the leading "/". */
  name: string
  record: ContainerRecord
  /** A runc process for it is alive (State.Running and the PID checks out). */
  running: boolean
}

export interface CreateContainerOptions {
  /** Unique among containers; default: a docker-like adjective_noun. */
  name?: string
  /** Replaces the image's Cmd (and, as docker does, keeps its Entrypoint). */
  cmd?: string[]
  /** Replaces the image's Entrypoint; an empty array clears it. */
  entrypoint?: string[]
  /** KEY=VALUE, overriding the image's values for the same keys. */
  env?: string[]
  workingDir?: string
  /** "uid[:gid]" or a name from the image's /etc/passwd. */
  user?: string
  labels?: Record<string, string>
}

export interface RemoveContainerOptions {
  /** Remove even when mounted (unmounting first); a running container is still refused. */
  force?: boolean
}

export interface CommitOptions {
  /** REPO[:TAG] to tag the new image with. */
  reference?: string
  /** The history entry's comment (docker commit -m). */
  message?: string
  /** The image's author (docker commit -a). */
  author?: string
  /** Dockerfile instructions applied to the config: CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL. */
  changes?: string[]
}

export interface CommitResult {
  imageId: ImageID
  /** The diffID of the container's changes (the empty layer's when nothing changed). */
  diffId: string
  /** false when nothing changed: no layer was added, the history entry is an empty_layer one (docker's behaviour). */
  addedLayer: boolean
}

export interface RunOptions {
  /** The child's stdio (default 'inherit': the container shares the caller's terminal streams). */
  stdio?: 'inherit' | 'pipe'
  /** Receives the child when stdio is 'pipe' (to read its output). */
  onSpawn?: (child: import('node:child_process').ChildProcess) => void
  /** The runc binary (default: "runc" on PATH). */
  runtime?: string
}

/**
 * The container verbs' contract. No daemon runs, so a container is its
 * record plus its mounted layer:
 *
 * - the record is `<root>/containers/<id>/` (src/containerdb: what a
 *   record holds, how it is found by ID, name or prefix, what "running"
 *   means), read and written only through `store.containers`;
 * - the mounted layer is `layerdb/mounts/<id>/` (src/layer/mounts.ts): the
 *   image's top chainID, Docker's init layer with real /etc/hostname,
 *   /etc/hosts and /etc/resolv.conf content, and the RW layer.
 *
 * Lifecycle: create (a locked draft record, then the mounted layer, then
 * the record published: a record always has its layer) → start (mount,
 * then a monitor process per container runs it with runc, records its
 * state and output, unmounts when it exits: process.ts, monitor/) →
 * stop / kill / wait / logs / exec while it runs → commit / diff / export
 * at any time → remove (the layer, then the record).
 */
import type { ImageID } from '../image/index.js'

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
  /** A terminal (docker -t): the monitor holds a pty's master, attaches go through its socket (monitor/tty-run.ts). */
  tty?: boolean
  /** Keep stdin open (docker -i): attaches feed it through the monitor. */
  interactive?: boolean
  /** Created for a detached run (docker run -d): no stream is attached (Config.Attach* false). */
  detached?: boolean
  /** hostconfig RestartPolicy, as --restart takes it (monitor/restart.ts parseRestartPolicy). */
  restartPolicy?: import('./monitor/restart.js').RestartPolicy
  /** hostconfig AutoRemove: the monitor removes the container when it exits (docker run --rm -d). */
  autoRemove?: boolean
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
  /** Dockerfile instructions applied to the config, as `docker commit --change` takes them (src/image applyChanges). */
  changes?: string[]
  /** The config's `docker_version` (dockerd writes its own version); omitted when not given. */
  dockerVersion?: string
}

export interface CommitResult {
  imageId: ImageID
  /** The diffID of the container's changes (the empty layer's when nothing changed). */
  diffId: string
  /** false when nothing changed: no layer was added, the history entry is an empty_layer one (docker's behaviour). */
  addedLayer: boolean
}


/**
 * createContainer: docker create without a daemon.
 *
 * Order, so that a crash or a race never leaves a record without its
 * layer: (1) the image is resolved and its config merged with the options;
 * (2) the mounted layer `layerdb/mounts/<id>` is created on the image's top
 * chainID with Docker's init layer, which gets real hostname/hosts/
 * resolv.conf content while it is built; (3) the record is built in
 * `containers/.tmp-<id>` and, under the data-root lock, renamed to
 * `containers/<id>` after checking that no other container has the name.
 * The temp record is made (and flock'ed) before (2), so a crash anywhere
 * leaves an unlocked `.tmp-<id>` and perhaps a mount without a record,
 * which recover.ts removes (at the next create). A failure removes the
 * mounted layer again.
 */
import { mkdir, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { StrataError } from '../errors/index.js'
import { topChainId } from '../image/index.js'
import { atomicWriteFile, nowNs, formatRfc3339Nano, DirLock } from '../fs/index.js'
import type { Store } from '../store/index.js'
import { commandOf, mergeContainerConfig } from './config.js'
import { writeInitFiles } from './init-files.js'
import { recoverContainers } from './recover.js'
import {
  CONFIG_FILE,
  HOSTCONFIG_FILE,
  TEMP_RECORD_PREFIX,
  containerDir,
  containersDir,
  encodeRecord,
  listRecords,
  newContainerId,
  newState,
  randomContainerName,
  shortContainerId,
  validateContainerName,
} from './records.js'
import type { Container, ContainerRecord, CreateContainerOptions } from './types.js'

/** hostconfig.json: docker's HostConfig for a container with no network, volumes or limits set. */
function hostConfig(): Record<string, unknown> {
  return {
    Binds: null,
    ContainerIDFile: '',
    LogConfig: { Type: 'none', Config: {} },
    NetworkMode: 'none',
    PortBindings: {},
    RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
    AutoRemove: false,
    VolumeDriver: '',
    VolumesFrom: null,
    CapAdd: null,
    CapDrop: null,
    Dns: [],
    DnsOptions: [],
    DnsSearch: [],
    ExtraHosts: null,
    IpcMode: 'private',
    Privileged: false,
    ReadonlyRootfs: false,
    ShmSize: 67108864,
    Runtime: 'runc',
    Ulimits: [
      { Name: 'nofile', Hard: 1024, Soft: 1024 },
      { Name: 'nproc', Hard: 1024, Soft: 1024 },
    ],
  }
}

/**
 * Creates a container from `imageRef` (a reference, or a full or short
 * image ID) and returns it. NOT_FOUND for an unknown image,
 * ALREADY_EXISTS for a taken name, INVALID_ARGUMENT for a bad name, env
 * or an image without a command when none is given.
 */
export async function createContainer(store: Store, imageRef: string, opts: CreateContainerOptions = {}): Promise<Container> {
  const wantedName = opts.name === undefined ? undefined : validateContainerName(opts.name)
  const imageId = await store.findImage(imageRef)
  const image = await store.images.get(imageId)
  const id = newContainerId()
  const hostname = shortContainerId(id)
  const config = mergeContainerConfig(image.config.config, opts, imageRef, hostname)
  const { path, args } = commandOf(config)
  if (wantedName !== undefined && (await listRecords(store.root)).some((r) => r.Name === `/${wantedName}`)) {
    throw nameTaken(wantedName)
  }

  await recoverContainers(store)
  // The temp record exists, locked, before the mount: recovery takes a
  // mount without a record and without a live temp record for a crash's.
  const tmp = join(containersDir(store.root), `${TEMP_RECORD_PREFIX}${id}`)
  await mkdir(containersDir(store.root), { recursive: true, mode: 0o710 })
  await mkdir(tmp, { mode: 0o710 })
  const tmpLock = DirLock.tryAcquire(tmp, 'shared')
  let published = false
  let mounted = false
  try {
    await store.layers.createMount(id, topChainId(image.config), { initContent: (rootfs) => writeInitFiles(rootfs, hostname) })
    mounted = true
    const record: ContainerRecord = {
      StreamConfig: {},
      State: newState(),
      ID: id,
      Created: formatRfc3339Nano(nowNs(), 0),
      Managed: false,
      Path: path,
      Args: args,
      Config: config,
      Image: imageId,
      NetworkSettings: null,
      LogPath: '',
      Name: '',
      Driver: store.driver.name,
      OS: 'linux',
      MountLabel: '',
      ProcessLabel: '',
      RestartCount: 0,
      HasBeenStartedBefore: false,
      HasBeenManuallyStopped: false,
      MountPoints: {},
      AppArmorProfile: '',
      HostnamePath: '',
      HostsPath: '',
      ResolvConfPath: '',
    }
    await atomicWriteFile(join(tmp, HOSTCONFIG_FILE), JSON.stringify(hostConfig()), 0o644)
    const name = await store.layers.lock.withLock(async () => {
      const taken = new Set((await listRecords(store.root)).map((r) => r.Name))
      let chosen = wantedName
      if (chosen === undefined) {
        for (let attempt = 0; chosen === undefined || taken.has(`/${chosen}`); attempt++) {
          chosen = attempt < 10 ? randomContainerName(attempt) : `${randomContainerName(0)}_${hostname}`
        }
      } else if (taken.has(`/${chosen}`)) {
        throw nameTaken(chosen)
      }
      record.Name = `/${chosen}`
      await atomicWriteFile(join(tmp, CONFIG_FILE), encodeRecord(record), 0o600)
      await rename(tmp, containerDir(store.root, id))
      published = true
      return chosen
    })
    return { id, name, record, running: false }
  } finally {
    if (!published) {
      if (mounted) await store.layers.removeMount(id, { force: true }).catch(() => {})
      await rm(tmp, { recursive: true, force: true }).catch(() => {})
    }
    tmpLock?.close()
  }
}

function nameTaken(name: string): StrataError {
  return new StrataError('ALREADY_EXISTS', `Conflict. The container name "/${name}" is already in use`, {
    details: { name },
    hint: 'remove that container or choose another name',
  })
}

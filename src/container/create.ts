/**
 * createContainer: docker create without a daemon.
 *
 * Order, so that a crash or a race never leaves a record without its
 * layer: (1) the image is resolved and its config merged with the options;
 * (2) a draft record is started (`containers/.tmp-<id>`, flock'd: see
 * src/containerdb); (3) the mounted layer `layerdb/mounts/<id>` is created
 * on the image's top chainID with Docker's init layer, which gets real
 * hostname/hosts/resolv.conf content while it is built; (4) the draft is
 * published under the data-root lock after checking the name. A crash
 * anywhere leaves an unlocked draft and perhaps a mount without a record,
 * which store.containers.recover() removes (run first by every create). A
 * failure removes the mounted layer again.
 */
import { StrataError } from '../errors/index.js'
import { formatRfc3339Nano, nowNs } from '../fs/index.js'
import { topChainId } from '../image/index.js'
import { HOSTCONFIG_FILE, newContainerId, newState, shortContainerId, type Container, type ContainerRecord } from '../containerdb/index.js'
import type { Store } from '../store/index.js'
import { commandOf, mergeContainerConfig } from './config.js'
import { initFileContents } from './init-files.js'
import { NONE_ENDPOINT } from './inspect.js'
import type { CreateContainerOptions } from './types.js'

/** hostconfig.json: docker's HostConfig for a container with no network, volumes or limits set; its output in a json-file log. */
function hostConfig(opts: CreateContainerOptions): Record<string, unknown> {
  return {
    Binds: null,
    ContainerIDFile: '',
    LogConfig: { Type: 'json-file', Config: {} },
    NetworkMode: 'none',
    PortBindings: {},
    RestartPolicy: opts.restartPolicy ?? { Name: 'no', MaximumRetryCount: 0 },
    AutoRemove: opts.autoRemove === true,
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
 * daemon/network.Settings as dockerd 20.10 writes it for a container on the
 * `none` network: dockerd dereferences it (inspect, start), a null one
 * makes it panic with the container's lock held.
 */
function noneNetworkSettings(): Record<string, unknown> {
  return {
    Bridge: '',
    SandboxID: '',
    HairpinMode: false,
    LinkLocalIPv6Address: '',
    LinkLocalIPv6PrefixLen: 0,
    Networks: { none: { ...NONE_ENDPOINT, IPAMOperational: false } },
    Service: null,
    Ports: null,
    SandboxKey: '',
    SecondaryIPAddresses: null,
    SecondaryIPv6Addresses: null,
    IsAnonymousEndpoint: false,
    HasSwarmEndpoint: false,
  }
}

/**
 * Creates a container from `imageRef` (a reference, or a full or short
 * image ID) and returns it. NOT_FOUND for an unknown image,
 * ALREADY_EXISTS for a taken name, INVALID_ARGUMENT for a bad name, env
 * or an image without a command when none is given.
 */
export async function createContainer(store: Store, imageRef: string, opts: CreateContainerOptions = {}): Promise<Container> {
  const policy = opts.restartPolicy?.Name ?? 'no'
  if (opts.autoRemove === true && policy !== 'no' && policy !== '') {
    // dockerd's words (daemon/container.go verifyContainerSettings).
    throw new StrataError('INVALID_ARGUMENT', "can't create 'AutoRemove' container with restart policy")
  }
  if (opts.name !== undefined) await store.containers.checkNameFree(opts.name)
  const imageId = await store.findImage(imageRef)
  const image = await store.images.get(imageId)
  const id = newContainerId()
  const hostname = shortContainerId(id)
  const config = mergeContainerConfig(image.config.config, opts, imageRef, hostname)
  const { path, args } = commandOf(config)

  await store.containers.recover()
  // The draft exists, locked, before the mount: recovery takes a mount
  // without a record and without a live draft for a crash's.
  const draft = await store.containers.draft(id)
  let mounted = false
  let published = false
  try {
    await store.layers.createMount(id, topChainId(image.config))
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
      NetworkSettings: noneNetworkSettings(),
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
    // Side by side: each is an atomic write with two fsyncs, which overlap this way.
    const files = { [HOSTCONFIG_FILE]: JSON.stringify(hostConfig(opts)), ...(await initFileContents(hostname)) }
    await Promise.all(Object.entries(files).map(([file, content]) => draft.writeFile(file, content, 0o644)))
    const name = await draft.publish(record, opts.name)
    published = true
    return { id, name, record, running: false }
  } finally {
    if (!published && mounted) await store.layers.removeMount(id, { force: true }).catch(() => {})
    await draft.abandon()
  }
}

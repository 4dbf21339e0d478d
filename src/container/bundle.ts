/**
 * The OCI runtime bundle's config.json for a container, close to what
 * dockerd 20.10 hands containerd for `docker run --network none`
 * (daemon/oci_linux.go's defaults): the process from Entrypoint + Cmd,
 * Env with a default PATH and HOSTNAME, the working dir, a numeric user;
 * Docker's default capabilities, masked and read-only /proc paths, and
 * mounts (proc, /dev tmpfs, devpts, sysfs read-only, mqueue, /dev/shm),
 * then the container's resolv.conf, hostname and hosts bound over the init
 * layer's empty ones (see init-files.ts).
 *
 * Differences, on purpose:
 * - rlimits NOFILE and NPROC 1024:1024, since root here lacks
 *   CAP_SYS_RESOURCE and cannot raise them (dockerd gets the same with
 *   --default-ulimit);
 * - a new network namespace with only loopback (runc brings lo up), as
 *   docker's "none" network gives;
 * - no seccomp profile and no AppArmor.
 */
import { constants } from 'node:fs'
import { open } from 'node:fs/promises'
import { join } from 'node:path'
import { StrataError, isErrno } from '../errors/index.js'
import type { ContainerConfig } from '../image/index.js'
import { commandOf, mergeEnv } from './config.js'

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** oci.DefaultCapabilities(). */
const DEFAULT_CAPS = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
]

export const MASKED_PATHS = [
  '/proc/asound',
  '/proc/acpi',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
]

export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']

export interface ProcessUser {
  uid: number
  gid: number
  /** The passwd entry's home directory, "/" without one (what dockerd sets HOME to). */
  home: string
}

/**
 * The image's /etc/passwd or /etc/group. The file itself is opened with
 * O_NOFOLLOW: an image's symlink there would otherwise make strata read a
 * host file. undefined when it is missing or not a plain file.
 */
async function readDbFile(rootfs: string, file: string): Promise<string | undefined> {
  let fh
  try {
    fh = await open(join(rootfs, 'etc', file), constants.O_RDONLY | constants.O_NOFOLLOW)
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR', 'ELOOP')) return undefined
    throw err
  }
  try {
    return await fh.readFile('utf8')
  } finally {
    await fh.close()
  }
}

/** The fields of the entry whose `column` is `value`. */
async function lookupDb(rootfs: string, file: string, column: number, value: string): Promise<string[] | undefined> {
  const text = await readDbFile(rootfs, file)
  return text
    ?.split('\n')
    .map((l) => l.split(':'))
    .find((f) => f.length >= 4 && f[column] === value)
}

/**
 * Config.User as uid/gid/home: "" is root; numbers are taken as they are;
 * names are looked up in the image's /etc/passwd and /etc/group (a name
 * with no entry is an error; a uid with none gets gid 0 and home "/").
 */
export async function resolveUser(rootfs: string, user: string): Promise<ProcessUser> {
  const [u, g] = (user === '' ? '0' : user).split(':', 2) as [string, string | undefined]
  let uid: number
  let gid = 0
  let home = '/'
  if (/^[0-9]+$/.test(u)) {
    uid = Number(u)
    const entry = await lookupDb(rootfs, 'passwd', 2, String(uid))
    if (entry !== undefined) {
      gid = Number(entry[3])
      home = entry[5] || '/'
    }
  } else {
    const entry = await lookupDb(rootfs, 'passwd', 0, u)
    if (entry === undefined) throw new StrataError('INVALID_ARGUMENT', `Unable to find user ${u}: no matching entries in passwd file`)
    uid = Number(entry[2])
    gid = Number(entry[3])
    home = entry[5] || '/'
  }
  if (g !== undefined) {
    if (/^[0-9]+$/.test(g)) gid = Number(g)
    else {
      const entry = await lookupDb(rootfs, 'group', 0, g)
      if (entry === undefined) throw new StrataError('INVALID_ARGUMENT', `Unable to find group ${g}: no matching entries in group file`)
      gid = Number(entry[2])
    }
  }
  return { uid, gid, home }
}

/** The config.json of a bundle whose root is `rootfs`. */
export function runtimeSpec(config: ContainerConfig, rootfs: string, hostname: string, user: ProcessUser, binds: ReadonlyArray<{ source: string; destination: string }> = []): Record<string, unknown> {
  const { path, args } = commandOf(config)
  // dockerd's CreateDaemonEnvironment: a terminal gets TERM=xterm unless the config says otherwise.
  let env = mergeEnv([DEFAULT_PATH, `HOSTNAME=${hostname}`, ...(config.Tty === true ? ['TERM=xterm'] : [])], config.Env ?? [])
  if (!env.some((e) => e.startsWith('HOME='))) env = [...env, `HOME=${user.home}`]
  const caps = DEFAULT_CAPS
  return {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: config.Tty === true,
      // The primary group as the one supplementary group, as dockerd's getUser gives a user without others.
      user: { uid: user.uid, gid: user.gid, additionalGids: [user.gid] },
      args: [path, ...args],
      env,
      cwd: config.WorkingDir !== undefined && config.WorkingDir !== '' ? config.WorkingDir : '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      rlimits: [
        { type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 },
        { type: 'RLIMIT_NPROC', hard: 1024, soft: 1024 },
      ],
      noNewPrivileges: false,
    },
    root: { path: rootfs, readonly: false },
    hostname,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      ...binds.map((b) => ({ destination: b.destination, type: 'bind', source: b.source, options: ['rbind', 'rprivate'] })),
    ],
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'network' }],
      maskedPaths: MASKED_PATHS,
      readonlyPaths: READONLY_PATHS,
      resources: { devices: [{ allow: false, access: 'rwm' }] },
    },
  }
}

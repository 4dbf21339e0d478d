/**
 * The content of a container's /etc/hostname, /etc/hosts and
 * /etc/resolv.conf. As dockerd: the init layer keeps them empty (0755),
 * so `export` and `commit` carry empty files; the content lives in the
 * container's directory (containers/<id>/hostname, hosts, resolv.conf,
 * written at create) and is bind-mounted over them when the container
 * runs (bundle.ts), so a process inside sees it and may change it without
 * touching its layer.
 *
 * The content is what dockerd writes for a container on the "none"
 * network: the hostname with a newline; the standard localhost lines of
 * libnetwork's etchosts (no line for the hostname: there is no container
 * address to name, and dockerd writes none either); the host's
 * resolv.conf with localhost nameservers removed (they cannot be reached
 * from another network namespace) and Google's public servers when none is
 * left, as libnetwork's resolvconf.FilterResolvDNS does. Mode 0644.
 */
import { readFile } from 'node:fs/promises'
import { isErrno } from '../errors/index.js'

/** libnetwork's default lines (etchosts.defaultContent). */
const DEFAULT_HOSTS = [
  '127.0.0.1\tlocalhost',
  '::1\tlocalhost ip6-localhost ip6-loopback',
  'fe00::0\tip6-localnet',
  'ff00::0\tip6-mcastprefix',
  'ff02::1\tip6-allnodes',
  'ff02::2\tip6-allrouters',
]

/** libnetwork's defaultIPv4Dns, used when the host only has localhost resolvers. */
const DEFAULT_NAMESERVERS = ['nameserver 8.8.8.8', 'nameserver 8.8.4.4']

/** /etc/hosts on the "none" network: the default lines only (checked against dockerd 20.10: no line for the hostname). */
export function hostsContent(): string {
  return `${DEFAULT_HOSTS.join('\n')}\n`
}

/** The host's resolv.conf, filtered for use in a container. */
export function filterResolvConf(host: string): string {
  const lines = host.split('\n')
  const isLocal = (line: string): boolean => /^\s*nameserver\s+(127\.[0-9.]+|::1)\s*$/.test(line)
  const kept = lines.filter((l) => !isLocal(l))
  let text = kept.join('\n').replace(/\n{3,}/g, '\n\n')
  if (!kept.some((l) => /^\s*nameserver\s/.test(l))) {
    text = `${text.replace(/\n*$/, '')}${text.trim() === '' ? '' : '\n'}${DEFAULT_NAMESERVERS.join('\n')}\n`
  }
  if (!text.endsWith('\n')) text += '\n'
  return text
}

async function readIfThere(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined
    throw err
  }
}

/**
 * The host's resolv.conf; with systemd-resolved's stub (127.0.0.53 as the
 * only nameserver) the file with the real upstream servers instead, as
 * dockerd 20.10 picks it.
 */
async function hostResolvConf(): Promise<string> {
  const main = (await readIfThere('/etc/resolv.conf')) ?? ''
  const servers = [...main.matchAll(/^\s*nameserver\s+(\S+)/gm)].map((m) => m[1])
  if (servers.length === 1 && servers[0] === '127.0.0.53') {
    const upstream = await readIfThere('/run/systemd/resolve/resolv.conf')
    if (upstream !== undefined) return upstream
  }
  return main
}

/** The files of a container's directory bind-mounted over /etc/hostname, /etc/hosts and /etc/resolv.conf, by their name there. */
export const INIT_FILES = { hostname: '/etc/hostname', hosts: '/etc/hosts', 'resolv.conf': '/etc/resolv.conf' } as const

/** The three files' content, by their name in the container's directory. */
export async function initFileContents(hostname: string): Promise<Record<keyof typeof INIT_FILES, string>> {
  return { hostname: `${hostname}\n`, hosts: hostsContent(), 'resolv.conf': filterResolvConf(await hostResolvConf()) }
}

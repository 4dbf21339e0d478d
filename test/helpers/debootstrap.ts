/**
 * A real Debian root filesystem for tests and benchmarks: debootstrap
 * bookworm minbase (~6,800 entries, ~200 MiB) from the mirror apt uses,
 * tarred by GNU tar (posix, xattrs, numeric owners) and cached in
 * CACHE_DIR, since building it takes a minute and the network. Delete the
 * file to rebuild it.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { rename, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { run } from './peers.js'

export const CACHE_DIR = '/var/cache/strata-test'
export const DEBOOTSTRAP_TAR = join(CACHE_DIR, 'debootstrap-bookworm.tar')
const SUITE = 'bookworm'
const FALLBACK_MIRROR = 'http://deb.debian.org/debian'
const TAR_CREATE = ['--format=posix', '--xattrs', '--xattrs-include=*', '--numeric-owner']

function ms(start: number): string {
  return `${(performance.now() - start).toFixed(0)} ms`
}

/** The URI apt itself uses for `suite` (deb822 .sources or one-line .list), so debootstrap reaches the same archive. */
export function aptMirror(suite: string, files: Array<{ name: string; text: string }>): string | undefined {
  for (const { name, text } of files) {
    if (name.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const fields = new Map<string, string>()
        let last = ''
        for (const line of stanza.split('\n')) {
          if (line.startsWith('#') || line.trim() === '') continue
          if (/^\s/.test(line) && last !== '') {
            fields.set(last, `${fields.get(last)} ${line.trim()}`)
            continue
          }
          const m = /^([\w-]+):\s*(.*)$/.exec(line)
          if (m === null) continue
          last = m[1]!.toLowerCase()
          fields.set(last, m[2]!.trim())
        }
        if (fields.get('enabled')?.toLowerCase() === 'no') continue
        const types = (fields.get('types') ?? '').split(/\s+/)
        const suites = (fields.get('suites') ?? '').split(/\s+/)
        const uri = (fields.get('uris') ?? '').split(/\s+/)[0]
        if (types.includes('deb') && suites.includes(suite) && uri !== undefined && uri !== '') return uri
      }
    } else if (name.endsWith('.list')) {
      for (const raw of text.split('\n')) {
        const line = raw.replace(/#.*/, '').replace(/\[[^\]]*\]/, '').trim()
        const [type, uri, lineSuite] = line.split(/\s+/)
        if (type === 'deb' && lineSuite === suite && uri !== undefined) return uri
      }
    }
  }
  return undefined
}

function hostAptSources(): Array<{ name: string; text: string }> {
  const files: Array<{ name: string; text: string }> = []
  if (existsSync('/etc/apt/sources.list')) files.push({ name: 'sources.list', text: readFileSync('/etc/apt/sources.list', 'utf8') })
  const dir = '/etc/apt/sources.list.d'
  if (existsSync(dir)) {
    for (const name of readdirSync(dir).sort()) files.push({ name, text: readFileSync(join(dir, name), 'utf8') })
  }
  return files
}

/** Mount points at or below `dir`, deepest first (debootstrap mounts proc, sys, dev/pts in its target). */
function mountsUnder(dir: string): string[] {
  const decode = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => decode(l.split(' ')[1] ?? ''))
    .filter((m) => m === dir || m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length)
}

/** Removes a debootstrap target, but only once nothing is mounted inside it (rm -r would descend into /dev, /sys...). */
async function removeTarget(dir: string): Promise<void> {
  for (const m of mountsUnder(dir)) await run('umount', ['-l', m]).catch(() => {})
  const left = mountsUnder(dir)
  if (left.length > 0) throw new Error(`Not removing ${dir}: still mounted: ${left.join(', ')}`)
  await rm(dir, { recursive: true, force: true })
}

/** The cached debootstrap tar, built (about a minute, needs the Debian mirror) when missing. */
export async function debootstrapTar(log: (message: string) => void = () => {}): Promise<string> {
  if (existsSync(DEBOOTSTRAP_TAR)) {
    log(`using cached ${DEBOOTSTRAP_TAR}`)
    return DEBOOTSTRAP_TAR
  }
  mkdirSync(CACHE_DIR, { recursive: true, mode: 0o755 })
  const mirror = aptMirror(SUITE, hostAptSources()) ?? FALLBACK_MIRROR
  const target = mkdtempSync(join(tmpdir(), 'strata-test-debootstrap-'))
  const partial = `${DEBOOTSTRAP_TAR}.tmp-${process.pid}`
  try {
    const start = performance.now()
    log(`debootstrap --variant=minbase ${SUITE} ${target} ${mirror}`)
    await run('debootstrap', ['--variant=minbase', SUITE, target, mirror])
    log(`debootstrap took ${ms(start)}`)
    const left = mountsUnder(target)
    if (left.length > 0) throw new Error(`debootstrap left mounts behind: ${left.join(', ')}`)
    await run('tar', [...TAR_CREATE, '-cf', partial, '-C', target, '.'])
    await rename(partial, DEBOOTSTRAP_TAR)
  } finally {
    rmSync(partial, { force: true })
    // A failure to clean up must not hide why debootstrap or tar failed.
    await removeTarget(target).catch((err: unknown) => log(`cleanup: ${(err as Error).message}`))
  }
  return DEBOOTSTRAP_TAR
}


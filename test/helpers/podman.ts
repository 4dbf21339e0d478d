/**
 * podman 4.3 on a private containers-storage root, for interop tests:
 * its own graph root, run root, tmp dir and storage.conf under a scratch
 * directory (so nothing in /var/lib/containers is read or written), the
 * vfs driver (plain directories: no mounts to leave behind), and no event
 * log. podman needs no daemon for load/save/inspect; every call is one
 * process that exits.
 *
 * The scratch directory is removed when the test ends (t.after), after
 * unmounting anything podman left mounted under it.
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { MNT_DETACH, umount2 } from '../../src/sys/index.js'
import { mountsAtOrUnder } from './dockerd.js'
import { requireTool, run, type RunResult } from './peers.js'

export const PODMAN = '/usr/bin/podman'

export interface Podman {
  /** The scratch directory holding storage, run root and tmp. */
  dir: string
  /** Runs `podman <private storage flags> args`. Rejects on a non-zero exit with stderr. */
  podman(args: string[]): Promise<RunResult>
  /** The full image ID (`sha256:<hex>`) podman has for `ref`. */
  imageId(ref: string): Promise<string>
  /** `RootFS.Layers` (the diffIDs) of `ref`. */
  diffIds(ref: string): Promise<string[]>
}

export function requirePodman(t: TestContext): boolean {
  return requireTool(t, PODMAN)
}

export function privatePodman(t: TestContext): Podman {
  const dir = mkdtempSync(join(tmpdir(), 'strata-test-podman-'))
  t.after(() => {
    const left = mountsAtOrUnder([dir])
    for (const m of left) umount2(m, MNT_DETACH)
    rmSync(dir, { recursive: true, force: true })
  })
  const storage = join(dir, 'storage')
  const runroot = join(dir, 'run')
  const tmp = join(dir, 'tmp')
  mkdirSync(tmp)
  // storage.conf too, so no system file can add options the flags do not override.
  const conf = join(dir, 'storage.conf')
  writeFileSync(conf, `[storage]\ndriver = "vfs"\nrunroot = "${runroot}"\ngraphroot = "${storage}"\n`)
  const env: NodeJS.ProcessEnv = { ...process.env, CONTAINERS_STORAGE_CONF: conf, TMPDIR: tmp }
  const flags = ['--root', storage, '--runroot', runroot, '--storage-driver', 'vfs', '--events-backend', 'none', '--tmpdir', tmp]
  const podman = (args: string[]): Promise<RunResult> => run(PODMAN, [...flags, ...args], { env })
  const inspect = async (ref: string): Promise<{ Id: string; RootFS: { Layers: string[] } }> => {
    const { stdout } = await podman(['image', 'inspect', ref])
    const [image] = JSON.parse(stdout.toString()) as Array<{ Id: string; RootFS: { Layers: string[] } }>
    if (image === undefined) throw new Error(`podman image inspect ${ref}: no image`)
    return image
  }
  return {
    dir,
    podman,
    imageId: async (ref) => `sha256:${(await inspect(ref)).Id.replace(/^sha256:/, '')}`,
    diffIds: async (ref) => (await inspect(ref)).RootFS.Layers,
  }
}

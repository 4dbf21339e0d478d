/**
 * The aufs driver: the conformance suite (mounted through fuse-overlayfs:
 * this kernel has no aufs), then what is particular to aufs.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDriver } from '../src/graphdriver/index.js'
import { MNT_DETACH, umount2 } from '../src/sys/index.js'
import { driverConformance, mountPoints } from './helpers/driver-suite.js'

const PREFIX = 'strata-test-aufs-'

/** Mount points at or under `dir`, deepest first. */
function mountsUnder(dir: string): string[] {
  return mountPoints().filter((m) => m === dir || m.startsWith(`${dir}/`)).reverse()
}

driverConformance(
  'aufs',
  async () => {
    const root = await mkdtemp(join(tmpdir(), `${PREFIX}suite-`))
    const driver = await openDriver(root, 'aufs', { 'aufs.mount': 'fuse' })
    return {
      driver,
      root,
      teardown: async () => {
        const left = mountsUnder(root)
        for (const m of left) umount2(m, MNT_DETACH)
        await rm(root, { recursive: true, force: true })
        assert.deepEqual(left, [], `mounts left under ${root}`)
      },
    }
  },
  {
    sizeRule: 'directory',
    lazyLinkCounts: "fuse-overlayfs reports a lower file's link count from the names it has looked up so far",
  },
)

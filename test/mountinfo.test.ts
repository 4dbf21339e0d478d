/**
 * parseMountInfo (src/graphdriver/overlay2/mounts.ts) on lines in the
 * kernel's format, and mountEntries on this process's real mountinfo:
 * the fields the overlay2 and devicemapper drivers and container stats
 * read (mount point, type, root, super options), with the kernel's octal
 * escapes undone.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { mountEntries, parseMountInfo } from '../src/graphdriver/overlay2/mounts.js'

test('parseMountInfo: mount point, type, root and super options of each line, escapes undone', () => {
  const text = [
    '25 30 0:22 / /sys/fs/cgroup/memory rw,nosuid shared:9 - cgroup cgroup rw,memory',
    '26 30 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev shared:10 - cgroup2 cgroup2 rw,nsdelegate',
    '90 30 0:50 /sub\\040dir /mnt/with\\040space\\011tab rw master:1 unbindable - overlay overlay rw,lowerdir=/a,upperdir=/b,workdir=/c',
    '',
  ].join('\n')
  assert.deepEqual(parseMountInfo(text), [
    { mountPoint: '/sys/fs/cgroup/memory', fsType: 'cgroup', root: '/', superOptions: ['rw', 'memory'] },
    { mountPoint: '/sys/fs/cgroup/unified', fsType: 'cgroup2', root: '/', superOptions: ['rw', 'nsdelegate'] },
    { mountPoint: '/mnt/with space\ttab', fsType: 'overlay', root: '/sub dir', superOptions: ['rw', 'lowerdir=/a', 'upperdir=/b', 'workdir=/c'] },
  ])
})

test('mountEntries: this process\'s mounts include / and /proc with their types', async () => {
  const entries = await mountEntries()
  assert.ok(entries.some((e) => e.mountPoint === '/' && e.root === '/'), JSON.stringify(entries.slice(0, 3)))
  assert.ok(entries.some((e) => e.mountPoint === '/proc' && e.fsType === 'proc'))
})

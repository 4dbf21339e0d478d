/**
 * Output paths that are device nodes, fifos or symlinks to them: strata
 * writes into them and never renames a temp file over them. Named after
 * the attack it stops: `strata save -o /dev/null` run as root replaced the
 * host's /dev/null by a regular file holding the archive (the temp file
 * renamed over the node). The tests make their own null device node
 * (mknod c 1 3) and fifo in a scratch directory; the host's /dev is never
 * touched.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createReadStream, lstatSync, symlinkSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { readTar } from '../src/archive/index.js'
import { S_IFCHR, mknod } from '../src/sys/index.js'
import { busyboxRootfsTar } from './helpers/api-server.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { strata } from './helpers/strata-cli.js'
import { tempDirFor } from './helpers/tmp.js'

function isNullNode(path: string): boolean {
  const st = lstatSync(path)
  // makedev(1, 3): the null device.
  return st.isCharacterDevice() && st.rdev === ((1 << 8) | 3)
}

async function tarNames(path: string): Promise<string[]> {
  const names: string[] = []
  for await (const e of readTar(createReadStream(path))) {
    names.push(e.header.name)
    for await (const _ of e.body()) void _
  }
  return names
}

test('save -o (docker-archive, oci-archive, through a symlink) and export -o into a device node or fifo keep the node (the "save -o /dev/null replaced /dev/null" attack)', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar', 'busybox', 'mkfifo')) return
  const dir = tempDirFor(t, 'special-out-')
  const root = join(dir, 'root')
  const nul = join(dir, 'null')
  mknod(nul, S_IFCHR | 0o666, 1, 3)
  assert.ok(isNullNode(nul))
  const rootfs = join(dir, 'rootfs.tar')
  await writeFile(rootfs, await busyboxRootfsTar(t))
  const imported = await strata(['import', '-c', 'CMD ["true"]', rootfs, 'special:1'], { root, driver: 'vfs' })
  assert.equal(imported.code, 0, imported.stderr)

  for (const format of ['docker-archive', 'oci-archive']) {
    const saved = await strata(['save', '--format', format, '-o', nul, 'special:1'], { root, driver: 'vfs' })
    assert.equal(saved.code, 0, saved.stderr)
    assert.ok(isNullNode(nul), `save --format ${format} -o NULLDEV left the device node in place`)
  }
  const link = join(dir, 'link-to-null')
  symlinkSync(nul, link)
  assert.equal((await strata(['save', '-o', link, 'special:1'], { root, driver: 'vfs' })).code, 0)
  assert.ok(lstatSync(link).isSymbolicLink() && isNullNode(nul), 'a symlink to a device is written through, not replaced')

  const created = await strata(['create', 'special:1'], { root, driver: 'vfs' })
  assert.equal(created.code, 0, created.stderr)
  const exported = await strata(['export', '-o', nul, created.text.trim()], { root, driver: 'vfs' })
  assert.equal(exported.code, 0, exported.stderr)
  assert.ok(isNullNode(nul), 'export -o NULLDEV left the device node in place')
  assert.equal((await strata(['rm', created.text.trim()], { root, driver: 'vfs' })).code, 0)

  // A fifo gets the bytes, and stays a fifo.
  const fifo = join(dir, 'fifo')
  await run('mkfifo', [fifo])
  const copy = join(dir, 'from-fifo.tar')
  const reader = spawn('sh', ['-c', `cat "${fifo}" > "${copy}"`], { stdio: 'ignore' })
  const readerDone = new Promise((resolve) => reader.on('close', resolve))
  const toFifo = await strata(['save', '-o', fifo, 'special:1'], { root, driver: 'vfs' })
  await readerDone
  assert.equal(toFifo.code, 0, toFifo.stderr)
  assert.ok(lstatSync(fifo).isFIFO(), 'the fifo is still a fifo')
  assert.ok((await tarNames(copy)).includes('manifest.json'), 'the archive went through the fifo')
  assert.ok((await readFile(copy)).length > 0)
})

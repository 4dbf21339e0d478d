/**
 * The tar index that image archives are read through: built from headers
 * only, it must find members exactly where GNU tar put them, in every
 * header flavour GNU tar writes (ustar, GNU long names, PAX), follow links
 * only inside the archive, and refuse archives that are cut short or are
 * not tars at all. Also the spool: compressed archives are decompressed
 * once to a temp file that close() removes; a plain file is used in place.
 */
import assert from 'node:assert/strict'
import { createReadStream } from 'node:fs'
import { mkdir, readdir, readFile, symlink, link, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { gzipSync } from 'node:zlib'
import { isStrataError } from '../src/errors/index.js'
import { spoolTar, TarIndex } from '../src/transport/index.js'
import { collect } from './helpers/layer-env.js'
import { requireTool, run } from './helpers/peers.js'
import { tempDirFor } from './helpers/tmp.js'

const LONG = `${'d'.repeat(60)}/${'e'.repeat(60)}/${'f'.repeat(80)}.blob`

async function tree(dir: string): Promise<void> {
  await mkdir(join(dir, 'src', LONG.slice(0, LONG.lastIndexOf('/'))), { recursive: true })
  await writeFile(join(dir, 'src', LONG), Buffer.alloc(70_000, 7))
  await writeFile(join(dir, 'src', 'small'), 'small\n')
  await writeFile(join(dir, 'src', 'empty'), '')
  await mkdir(join(dir, 'src', 'v1'))
  await symlink('../small', join(dir, 'src', 'v1', 'layer.tar'))
  await symlink('/etc/passwd', join(dir, 'src', 'abs'))
  await symlink('../../outside', join(dir, 'src', 'v1', 'escape'))
  await symlink('loop-b', join(dir, 'src', 'loop-a'))
  await symlink('loop-a', join(dir, 'src', 'loop-b'))
  await link(join(dir, 'src', 'small'), join(dir, 'src', 'hard'))
}

for (const format of ['gnu', 'pax', 'ustar'] as const) {
  test(`tar index (${format}): members are found at their offsets, links followed inside the archive only`, async (t) => {
    if (!requireTool(t, 'tar')) return
    const dir = tempDirFor(t, `tar-index-${format}-`)
    await tree(dir)
    const archive = join(dir, 'a.tar')
    // ustar cannot hold the 200-byte name: leave that file out there.
    const names = format === 'ustar' ? ['small', 'empty', 'v1', 'abs', 'loop-a', 'loop-b', 'hard'] : ['.']
    await run('tar', [`--format=${format}`, '-C', join(dir, 'src'), '-cf', archive, ...names])
    const index = await TarIndex.open(archive)
    try {
      const read = async (name: string): Promise<Buffer> => collect(await index.open(name, 'Blob'))
      assert.equal((await read('small')).toString(), 'small\n')
      assert.equal((await read('./small')).toString(), 'small\n', 'names are cleaned')
      assert.equal((await read('empty')).length, 0)
      if (format !== 'ustar') {
        const big = await read(LONG)
        assert.equal(big.length, 70_000)
        assert.ok(big.every((b) => b === 7), 'the long-named member\'s content is exact')
        assert.equal((await index.stat(LONG, 'Blob'))?.size, 70_000)
      }
      assert.equal((await read('v1/layer.tar')).toString(), 'small\n', 'a relative symlink inside the archive is followed')
      assert.equal((await read('hard')).toString(), 'small\n', 'so is a hardlink')
      assert.equal(await index.stat('missing', 'Blob'), undefined)
      await assert.rejects(index.open('abs', 'Blob'), (e: unknown) => isStrataError(e, 'UNSAFE_PATH'))
      await assert.rejects(index.open('v1/escape', 'Blob'), (e: unknown) => isStrataError(e, 'UNSAFE_PATH'))
      await assert.rejects(index.open('loop-a', 'Blob'), (e: unknown) => isStrataError(e, 'CORRUPT') && /loop/.test(e.message))
      await assert.rejects(index.open('v1', 'Blob'), (e: unknown) => isStrataError(e, 'CORRUPT') && /directory/.test(e.message))
      await assert.rejects(index.open('../small', 'Blob'), (e: unknown) => isStrataError(e, 'UNSAFE_PATH'))
      await assert.rejects(index.open('/small', 'Blob'), (e: unknown) => isStrataError(e, 'UNSAFE_PATH'))
    } finally {
      await index.close()
    }
  })
}

test('tar index: an archive cut short, and a file that is no tar, are CORRUPT', async (t) => {
  if (!requireTool(t, 'tar')) return
  const dir = tempDirFor(t, 'tar-index-bad-')
  await writeFile(join(dir, 'f'), Buffer.alloc(10_000, 1))
  const archive = join(dir, 'a.tar')
  await run('tar', ['-C', dir, '-cf', archive, 'f'])
  await truncate(archive, 4096)
  await assert.rejects(TarIndex.open(archive), (e: unknown) => isStrataError(e, 'CORRUPT') && /truncated: it ends inside "f"/.test(e.message))
  await writeFile(join(dir, 'junk'), Buffer.alloc(2048, 0x41))
  await assert.rejects(TarIndex.open(join(dir, 'junk')), (e: unknown) => isStrataError(e, 'CORRUPT') && /not a tar archive/.test(e.message))
  await writeFile(join(dir, 'tiny'), 'abc')
  await assert.rejects(TarIndex.open(join(dir, 'tiny')), (e: unknown) => isStrataError(e, 'CORRUPT') && /not a tar archive/.test(e.message))
})

test('spool: a plain tar is used in place; gzip and streams are spooled under tmpDir and removed on close', async (t) => {
  if (!requireTool(t, 'tar')) return
  const dir = tempDirFor(t, 'spool-')
  const tmp = join(dir, 'tmp')
  await mkdir(tmp)
  await writeFile(join(dir, 'f'), 'content\n')
  const archive = join(dir, 'a.tar')
  await run('tar', ['-C', dir, '-cf', archive, 'f'])
  const plain = await spoolTar(archive, { tmpDir: tmp })
  assert.equal(plain.path, archive)
  assert.equal(plain.spooled, false)
  await plain.close()

  const gz = join(dir, 'a.tar.gz')
  await writeFile(gz, gzipSync(await readFile(archive)))
  for (const input of [gz, createReadStream(gz), createReadStream(archive)]) {
    const s = await spoolTar(input, { tmpDir: tmp })
    assert.equal(s.spooled, true)
    assert.ok(s.path.startsWith(tmp), 'the copy is under tmpDir')
    assert.ok((await readFile(s.path)).equals(await readFile(archive)), 'the copy is the plain tar')
    await s.close()
    await s.close()
    assert.deepEqual(await readdir(tmp), [], 'close() removed it')
  }
  await assert.rejects(spoolTar(join(dir, 'nope.tar')), (e: unknown) => isStrataError(e, 'NOT_FOUND'))
})

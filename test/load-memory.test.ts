/**
 * Bounded memory whatever the input (issue 22): `load` from stdin of a
 * gzip'd docker-archive whose layer is one 2 GB sparse file (3 bytes of
 * data) peaked at 805 MB RSS. The budget is 150 MB for any load; the peak
 * RSS of the strata process is measured by /usr/bin/time -v (getrusage's
 * ru_maxrss), on overlay2 (layers applied in a worker thread) and vfs.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { STRATA_CLI } from './helpers/strata-cli.js'
import { tempDirFor } from './helpers/tmp.js'

const BUDGET_KB = 150 * 1024

/** Runs strata under /usr/bin/time -v with `stdinFile` as stdin; its exit code and peak RSS in kB. */
function measured(args: string[], stdinFile: string): Promise<{ code: number; maxRssKb: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const fd = openSync(stdinFile, 'r')
    const child = spawn('/usr/bin/time', ['-v', process.execPath, STRATA_CLI, ...args], { stdio: [fd, 'ignore', 'pipe'], env: { ...process.env, STRATA_ROOT: '', STRATA_DRIVER: '' } })
    closeSync(fd)
    let stderr = ''
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()))
    child.on('error', reject)
    child.on('close', (code) => {
      const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)
      if (m === null) return reject(new Error(`no peak RSS in /usr/bin/time's output: ${stderr}`))
      resolve({ code: code ?? -1, maxRssKb: Number(m[1]), stderr })
    })
  })
}

test('load from stdin of a 2 GB sparse layer stays within 150 MB RSS', { timeout: 600_000 }, async (t) => {
  if (!requireRoot(t) || !requireTool(t, '/usr/bin/time', 'tar', 'gzip', 'truncate', 'sha256sum')) return
  const work = tempDirFor(t, 'load-memory-')
  // The layer: one 2 GB file, a hole but for 3 bytes in the middle (GNU tar without --sparse stores it whole).
  await run('mkdir', ['-p', join(work, 'rootfs'), join(work, 'img', 'l')])
  await run('truncate', ['-s', '2G', join(work, 'rootfs', 'big')])
  await run('sh', ['-c', `printf abc | dd of=${join(work, 'rootfs', 'big')} bs=1 seek=1000000000 conv=notrunc 2>/dev/null`])
  const layer = join(work, 'img', 'l', 'layer.tar')
  await run('tar', ['--numeric-owner', '-C', join(work, 'rootfs'), '-cf', layer, '.'])
  const diffId = `sha256:${(await run('sha256sum', [layer])).stdout.toString().split(' ')[0]}`
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'] }, created: '2024-01-01T00:00:00Z', rootfs: { type: 'layers', diff_ids: [diffId] }, history: [{ created: '2024-01-01T00:00:00Z', created_by: 'sparse' }] }),
  )
  const { createHash } = await import('node:crypto')
  const configName = `${createHash('sha256').update(config).digest('hex')}.json`
  writeFileSync(join(work, 'img', configName), config)
  writeFileSync(join(work, 'img', 'manifest.json'), JSON.stringify([{ Config: configName, RepoTags: ['sparse:1'], Layers: ['l/layer.tar'] }]))
  const archive = join(work, 'sparse.tar.gz')
  await run('sh', ['-c', `tar -C ${join(work, 'img')} -cf - . | gzip -1 > ${archive}`])
  await run('rm', ['-rf', join(work, 'img'), join(work, 'rootfs')])
  assert.ok(readFileSync(archive).length < 64 << 20)

  for (const driver of ['overlay2', 'vfs']) {
    const root = join(work, `root-${driver}`)
    const r = await measured(['--root', root, '-s', driver, 'load', '-q', '-i', '-'], archive)
    assert.equal(r.code, 0, r.stderr)
    t.diagnostic(`${driver}: peak RSS ${(r.maxRssKb / 1024).toFixed(0)} MB (budget ${BUDGET_KB / 1024} MB)`)
    assert.ok(r.maxRssKb <= BUDGET_KB, `${driver}: load peaked at ${(r.maxRssKb / 1024).toFixed(0)} MB RSS, over the ${BUDGET_KB / 1024} MB budget`)
    await run('rm', ['-rf', root])
  }
})

/**
 * `strata cp` through the real `strata` binary (vfs, the 3-layer test
 * image), as `docker cp`: a file and a directory out (into an existing
 * directory under their own name, to a new path under its name, `/.` for
 * the contents alone), out to `-` (a tar GNU tar lists), a file in and a
 * tar in from `-`; and the attacks: a SRC with `..` climbing out of the
 * container, a symlink in the container pointing to / (out and in), stay
 * inside the container.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { containerEnv } from './helpers/container-env.js'
import { IMAGE_TAG } from './helpers/docker-image.js'
import { requireDockerd } from './helpers/dockerd.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { tempDirFor } from './helpers/tmp.js'
import { STRATA_CLI } from './helpers/strata-cli.js'

test('strata cp: out, out to -, in, in from - (vfs); .. and a symlink to / stay inside the container', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'runc', 'busybox', 'tar') || !requireDockerd(t)) return
  const env = await containerEnv(t, 'vfs')
  const strata = (args: string[], input?: Buffer): { stdout: Buffer; stderr: string; status: number | null } => {
    const r = spawnSync(process.execPath, [STRATA_CLI, '--root', env.root, '-s', 'vfs', ...args], { input, maxBuffer: 64 << 20 })
    return { stdout: r.stdout, stderr: r.stderr.toString(), status: r.status }
  }
  const ok = (args: string[], input?: Buffer): Buffer => {
    const r = strata(args, input)
    assert.equal(r.status, 0, `strata ${args.join(' ')}: ${r.stderr}`)
    return r.stdout
  }
  const scratch = tempDirFor(t, 'cli-cp-')
  ok(['run', '--name', 'cp1', IMAGE_TAG, 'sh', '-c', 'mkdir -p /d/sub && echo inner > /d/sub/f && echo top > /f && ln -s / /rootlink'])

  // A file out: to a new name, and into an existing directory under its own name.
  ok(['cp', 'cp1:/f', join(scratch, 'f-copy')])
  assert.equal(readFileSync(join(scratch, 'f-copy'), 'utf8'), 'top\n')
  mkdirSync(join(scratch, 'into'))
  ok(['cp', 'cp1:/f', join(scratch, 'into')])
  assert.equal(readFileSync(join(scratch, 'into', 'f'), 'utf8'), 'top\n')

  // A directory out: into an existing directory, to a new path, its contents alone with /.
  ok(['cp', 'cp1:/d', join(scratch, 'into')])
  assert.equal(readFileSync(join(scratch, 'into', 'd', 'sub', 'f'), 'utf8'), 'inner\n')
  ok(['container', 'cp', 'cp1:/d', join(scratch, 'newdir')])
  assert.equal(readFileSync(join(scratch, 'newdir', 'sub', 'f'), 'utf8'), 'inner\n')
  mkdirSync(join(scratch, 'contents'))
  ok(['cp', 'cp1:/d/.', join(scratch, 'contents')])
  assert.equal(readFileSync(join(scratch, 'contents', 'sub', 'f'), 'utf8'), 'inner\n')
  assert.equal(existsSync(join(scratch, 'contents', 'd')), false, '/. copies the contents, not the directory')
  const dirOntoFile = strata(['cp', 'cp1:/d', join(scratch, 'f-copy')])
  assert.equal(dirOntoFile.status, 1)
  assert.match(dirOntoFile.stderr, /cannot copy a directory to a file/)

  // Out to -: the tar on stdout, as GNU tar reads it.
  const tarFile = join(scratch, 'd.tar')
  writeFileSync(tarFile, ok(['cp', 'cp1:/d', '-']))
  assert.deepEqual((await run('tar', ['-tf', tarFile])).stdout.toString().split('\n').filter((l) => l !== ''), ['d/', 'd/sub/', 'd/sub/f'])
  assert.equal((await run('tar', ['-xOf', tarFile, 'd/sub/f'])).stdout.toString(), 'inner\n')

  // A file in (into a directory, and to a new name), read back out.
  writeFileSync(join(scratch, 'host.txt'), 'from the host\n')
  ok(['cp', join(scratch, 'host.txt'), 'cp1:/d'])
  ok(['cp', join(scratch, 'host.txt'), 'cp1:/renamed.txt'])
  ok(['cp', 'cp1:/d/host.txt', join(scratch, 'back.txt')])
  assert.equal(readFileSync(join(scratch, 'back.txt'), 'utf8'), 'from the host\n')
  ok(['cp', 'cp1:/renamed.txt', join(scratch, 'back2.txt')])
  assert.equal(readFileSync(join(scratch, 'back2.txt'), 'utf8'), 'from the host\n')

  // A tar in from -, made by GNU tar.
  mkdirSync(join(scratch, 'tarsrc', 't'), { recursive: true })
  writeFileSync(join(scratch, 'tarsrc', 't', 'g'), 'gnu\n')
  const gnuTar = (await run('tar', ['-cf', '-', '-C', join(scratch, 'tarsrc'), 't'])).stdout
  ok(['cp', '-', 'cp1:/d'], gnuTar)
  ok(['cp', 'cp1:/d/t/g', join(scratch, 'g')])
  assert.equal(readFileSync(join(scratch, 'g'), 'utf8'), 'gnu\n')
  const stdinToFile = strata(['cp', '-', 'cp1:/f'], gnuTar)
  assert.equal(stdinToFile.status, 1)
  assert.match(stdinToFile.stderr, /must be a directory/)

  // The attack by name: `..` climbing out of the container is the container's root.
  writeFileSync(join(scratch, 'host-secret'), 'host only\n')
  const climb = strata(['cp', `cp1:../../../../../../..${scratch}/host-secret`, join(scratch, 'stolen')])
  assert.equal(climb.status, 1, 'the host file is not reached')
  assert.match(climb.stderr, /Could not find the file/)
  assert.equal(existsSync(join(scratch, 'stolen')), false)
  ok(['cp', 'cp1:../../../../f', join(scratch, 'climbed')])
  assert.equal(readFileSync(join(scratch, 'climbed'), 'utf8'), 'top\n', '/../../f is the container\'s /f')

  // The attack by name: a symlink in the container pointing to / is the container's root, out and in.
  ok(['cp', 'cp1:/rootlink/f', join(scratch, 'via-link')])
  assert.equal(readFileSync(join(scratch, 'via-link'), 'utf8'), 'top\n')
  const viaLinkSecret = strata(['cp', `cp1:/rootlink${scratch}/host-secret`, join(scratch, 'stolen')])
  assert.equal(viaLinkSecret.status, 1)
  assert.equal(existsSync(join(scratch, 'stolen')), false)
  ok(['cp', '-L', 'cp1:/rootlink', join(scratch, 'followed')])
  assert.equal(readFileSync(join(scratch, 'followed', 'f'), 'utf8'), 'top\n', '-L copies the container\'s root')
  const planted = `strata-cp-planted-${process.pid}`
  writeFileSync(join(scratch, planted), 'planted\n')
  ok(['cp', join(scratch, planted), 'cp1:/rootlink/'])
  assert.equal(existsSync(`/${planted}`), false, 'nothing written to the host\'s /')
  ok(['cp', `cp1:/${planted}`, join(scratch, 'planted-back')])
  assert.equal(readFileSync(join(scratch, 'planted-back'), 'utf8'), 'planted\n', 'it landed in the container\'s /')

  // Usage as docker's.
  assert.equal(strata(['cp', 'cp1:/f']).status, 1)
  assert.match(strata(['cp', '--help']).stdout.toString(), /Usage: strata cp /)
  const local = strata(['cp', join(scratch, 'a'), join(scratch, 'b')])
  assert.equal(local.status, 1)
  assert.match(local.stderr, /must specify at least one container source/)
  ok(['rm', 'cp1'])
})

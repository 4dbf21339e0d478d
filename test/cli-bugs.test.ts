/**
 * Bugs a new user hit with the strata command (issue 14), each a test
 * named after it, through the real binary on a busybox image.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { busyboxRootfsTar } from './helpers/api-server.js'
import { mountsAtOrUnder } from './helpers/dockerd.js'
import { requireRoot, requireTool } from './helpers/peers.js'
import { STRATA_CLI } from './helpers/strata-cli.js'
import { tempDirFor } from './helpers/tmp.js'

interface Outcome {
  code: number
  stdout: string
  stderr: string
}

async function world(t: TestContext, driver: string): Promise<{ root: string; dir: string; strata: (args: string[], global?: string[]) => Outcome }> {
  const dir = tempDirFor(t, `cli-bugs-${driver}-`)
  const root = join(dir, 'root')
  const strata = (args: string[], global = ['-s', driver]): Outcome => {
    const r = spawnSync(process.execPath, [STRATA_CLI, '--root', root, ...global, ...args], { encoding: 'utf8', env: { ...process.env, STRATA_ROOT: '', STRATA_DRIVER: '' } })
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
  }
  const r = spawnSync(process.execPath, [STRATA_CLI, '--root', root, '-s', driver, 'import', '-c', 'CMD ["sh"]', '-', 'bb:1'], { input: await busyboxRootfsTar(t), env: { ...process.env, STRATA_ROOT: '', STRATA_DRIVER: '' } })
  assert.equal(r.status, 0, r.stderr?.toString())
  return { root, dir, strata }
}

test('export | head -c 0: EPIPE leaves the container mounted (every exit path releases its mounts)', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'sh', 'head')) return
  const { root, strata } = await world(t, 'overlay2')
  const id = strata(['create', '--name', 'c1', 'bb:1']).stdout.trim()
  for (let i = 0; i < 3; i++) {
    const r = spawnSync('sh', ['-c', `"$0" "$1" --root "$2" export c1 | head -c 0`, process.execPath, STRATA_CLI, root], { encoding: 'utf8', env: { ...process.env, STRATA_ROOT: '', STRATA_DRIVER: '' } })
    assert.equal(r.status, 0)
  }
  const countFile = join(root, 'image', 'overlay2', 'layerdb', 'mounts', id, 'mount-count')
  assert.equal(existsSync(countFile) ? readFileSync(countFile, 'utf8').trim() : '0', '0', 'the mount count is back to 0')
  assert.deepEqual(mountsAtOrUnder([root]), [], 'nothing mounted')
  const rm = strata(['rm', 'c1'])
  assert.equal(rm.code, 0, `rm is not refused: ${rm.stderr}`)
})

test('run IMAGE /bin/nonexistent: docker\'s exec message and exit 127; a command that is not executable: 126', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'runc')) return
  const { strata } = await world(t, 'vfs')
  const missing = strata(['run', '--name', 'nx', 'bb:1', '/bin/nonexistent'])
  assert.equal(missing.code, 127)
  assert.match(missing.stderr, /^Error: .*exec: "\/bin\/nonexistent": stat \/bin\/nonexistent: no such file or directory.*\n$/, "docker's words, one line")
  assert.ok(!missing.stderr.includes('level='), "not runc's log line")
  assert.match(strata(['inspect', '-f', '{{.State.ExitCode}} {{.State.Error}}', 'nx']).stdout, /^127 .*exec: "\/bin\/nonexistent"/)
  const notExec = strata(['run', '--rm', 'bb:1', '/etc'])
  assert.equal(notExec.code, 126)
  assert.match(notExec.stderr, /^Error: .*exec: "\/etc": permission denied.*\n$/)
  const ran = strata(['run', '--rm', 'bb:1', 'sh', '-c', 'echo err >&2; exit 3'])
  assert.deepEqual([ran.code, ran.stderr], [3, 'err\n'], "a command that runs keeps its own status and stderr")
})

test('umount of an unmounted container names the container, not its mount ID', async (t) => {
  if (!requireRoot(t)) return
  const { strata } = await world(t, 'vfs')
  const id = strata(['create', '--name', 'c1', 'bb:1']).stdout.trim()
  const r = strata(['umount', 'c1'])
  assert.equal(r.code, 1)
  assert.equal(r.stderr, 'Error: Container "c1" is not mounted\n')
  assert.ok(!r.stderr.includes(id))
})

test("save -o /missing/dir/x.tar names the user's path, not the temp file's", async (t) => {
  if (!requireRoot(t)) return
  const { dir, strata } = await world(t, 'vfs')
  strata(['create', '--name', 'c1', 'bb:1'])
  const missing = join(dir, 'missing', 'dir')
  const save = strata(['save', '-o', join(missing, 'x.tar'), 'bb:1'])
  assert.equal(save.code, 1)
  assert.equal(save.stderr, `Error: failed to save image: invalid output path: directory "${missing}" does not exist\n`, 'docker 20.10\'s words')
  const exp = strata(['export', '-o', join(missing, 'x.tar'), 'c1'])
  assert.equal(exp.code, 1)
  assert.equal(exp.stderr, `Error: failed to export container: invalid output path: directory "${missing}" does not exist\n`)
  assert.equal(existsSync(join(dir, 'missing')), false)
})

test("-s vfs on an overlay2 root refuses, naming the root's driver, and writes nothing", async (t) => {
  if (!requireRoot(t)) return
  const { root, strata } = await world(t, 'overlay2')
  const r = strata(['images'], ['-s', 'vfs'])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /^Error: ".*" holds the images of storage driver "overlay2", not "vfs": with -s vfs the store would look empty\nhint: .*migrate --to vfs/)
  assert.equal(existsSync(join(root, 'vfs')), false, 'no empty vfs tree')
  assert.equal(existsSync(join(root, 'image', 'vfs')), false)
  assert.match(strata(['images'], []).stdout, /^REPOSITORY.*\nbb +1 /, 'without -s the store is there')
})

/**
 * `docker cp` through strata serve, both ways, with the real docker CLIs,
 * and the archive endpoint's attacks, each named after itself: `..` in
 * the path, symlinks inside the container pointing at the host's root or
 * files, tar entries climbing out with `..`, a symlink entry followed by a
 * file through it, and a destination that is a symlink to `/`. Nothing
 * may be read from or written to the host outside the container.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { writeTarFile } from './helpers/archive-fixtures.js'
import { DOCKER_20, DOCKER_28, httpUnix, importBusybox, shortTempDir, startStrataServe, type StrataServe } from './helpers/api-server.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { strata } from './helpers/strata-cli.js'

function canRun(t: TestContext): boolean {
  return requireRoot(t) && requireTool(t, 'busybox', 'tar', DOCKER_20, DOCKER_28)
}

async function serverWithContainer(t: TestContext): Promise<{ s: StrataServe; id: string }> {
  const s = await startStrataServe(t)
  await importBusybox(t, s.root)
  const created = await httpUnix(s.socket, 'POST', '/v1.41/containers/create?name=box', { body: JSON.stringify({ Image: 'busybox', Cmd: ['true'] }), headers: { 'Content-Type': 'application/json' } })
  assert.equal(created.status, 201, created.text)
  return { s, id: created.json<{ Id: string }>().Id }
}

/** Runs `fn` with the container's rootfs mounted by the strata CLI (another process, as a user would). */
async function inRootfs(s: StrataServe, fn: (rootfs: string) => Promise<void>): Promise<void> {
  const m = await strata(['mount', 'box'], { root: s.root })
  assert.equal(m.code, 0, m.stderr)
  try {
    await fn(m.text.trim())
  } finally {
    assert.equal((await strata(['umount', 'box'], { root: s.root })).code, 0)
  }
}

function statOf(r: { headers: Record<string, unknown> }): { name: string; size: number; mode: number; linkTarget: string } {
  return JSON.parse(Buffer.from(String(r.headers['x-docker-container-path-stat']), 'base64').toString()) as { name: string; size: number; mode: number; linkTarget: string }
}

for (const docker of [DOCKER_20, DOCKER_28]) {
  test(`docker cp both ways (${docker})`, async (t) => {
    if (!canRun(t)) return
    const { s } = await serverWithContainer(t)
    const work = shortTempDir(t, 'strata-api-cp-')
    writeFileSync(join(work, 'one.txt'), 'one\n')
    mkdirSync(join(work, 'tree/sub'), { recursive: true })
    writeFileSync(join(work, 'tree/sub/two.txt'), 'two\n')
    await s.docker(docker, ['cp', join(work, 'one.txt'), 'box:/tmp/'])
    await s.docker(docker, ['cp', join(work, 'tree'), 'box:/tmp/tree'])
    const diff = (await s.docker(docker, ['diff', 'box'])).stdout.toString()
    for (const line of ['C /tmp', 'A /tmp/one.txt', 'A /tmp/tree', 'A /tmp/tree/sub', 'A /tmp/tree/sub/two.txt']) assert.ok(diff.split('\n').includes(line), `${line} missing from:\n${diff}`)
    const out = join(work, 'out')
    mkdirSync(out)
    await s.docker(docker, ['cp', 'box:/tmp/one.txt', join(out, 'copy.txt')])
    assert.equal(readFileSync(join(out, 'copy.txt'), 'utf8'), 'one\n')
    await s.docker(docker, ['cp', 'box:/tmp/tree', join(out, 'tree')])
    assert.equal(readFileSync(join(out, 'tree/sub/two.txt'), 'utf8'), 'two\n')
    // A symlink in the container comes out as a symlink (busybox's applets are links to /bin/busybox).
    await s.docker(docker, ['cp', 'box:/bin/sh', join(out, 'sh')])
    assert.equal((await run('readlink', [join(out, 'sh')])).stdout.toString().trim(), '/bin/busybox')
    // stdin/stdout tar forms.
    const tar = (await s.docker(docker, ['cp', 'box:/etc/passwd', '-'])).stdout
    assert.match((await run('tar', ['-xO'], { input: tar })).stdout.toString(), /^root:x:0:0:/)
    const missing = await s.docker(docker, ['cp', 'box:/no/such/file', out]).then(
      () => 'copied',
      (err: Error) => err.message,
    )
    // docker 20.10 words a 404 on HEAD itself; 28 shows the server's message.
    assert.match(missing, /Could not find the file \/no\/such\/file in container|No such container:path: box:\/no\/such\/file/)
  })
}

test('archive attacks: ".." in the path reads the container, not the host', async (t) => {
  if (!canRun(t)) return
  const { s, id } = await serverWithContainer(t)
  // /etc/shadow exists on the host, not in the busybox container.
  assert.ok(existsSync('/etc/shadow'))
  for (const path of ['../../../../../etc/shadow', '/../../../etc/shadow', '/etc/../../../../etc/shadow']) {
    const head = await httpUnix(s.socket, 'HEAD', `/v1.41/containers/${id}/archive?path=${encodeURIComponent(path)}`)
    assert.equal(head.status, 404, path)
    const get = await httpUnix(s.socket, 'GET', `/v1.41/containers/${id}/archive?path=${encodeURIComponent(path)}`)
    assert.equal(get.status, 404, path)
    assert.match(get.json<{ message: string }>().message, /Could not find the file/)
  }
  const passwd = await httpUnix(s.socket, 'HEAD', `/v1.41/containers/${id}/archive?path=${encodeURIComponent('../../etc/passwd')}`)
  assert.equal(passwd.status, 200)
  const st = statOf(passwd)
  assert.equal(st.name, 'passwd')
  const content = await httpUnix(s.socket, 'GET', `/v1.41/containers/${id}/archive?path=${encodeURIComponent('../../etc/passwd')}`)
  assert.equal(st.size, (await run('tar', ['-xO'], { input: content.body })).stdout.length)
  assert.equal(st.mode, 0o644)
})

test('archive attacks: symlinks in the container pointing at the host stay in the container', async (t) => {
  if (!canRun(t)) return
  const { s, id } = await serverWithContainer(t)
  await inRootfs(s, async (rootfs) => {
    await symlink('/../../../../../', join(rootfs, 'escape'))
    await symlink('/etc/shadow', join(rootfs, 'shadowlink'))
    await symlink('../../../../../../../../etc', join(rootfs, 'tmp/up'))
  })
  const q = (path: string): string => `/v1.41/containers/${id}/archive?path=${encodeURIComponent(path)}`
  // Through a link to "/": the container's root.
  assert.equal((await httpUnix(s.socket, 'HEAD', q('/escape/etc/shadow'))).status, 404)
  assert.equal((await httpUnix(s.socket, 'HEAD', q('/tmp/up/shadow'))).status, 404)
  const hostname = await httpUnix(s.socket, 'GET', q('/escape/etc/hostname'))
  assert.equal(hostname.status, 200)
  // A created container's /etc/hostname is the init layer's empty file (dockerd binds the real one only while it runs).
  assert.match((await run('tar', ['-tv'], { input: hostname.body })).stdout.toString(), /^-rwxr-xr-x .* 0 .* hostname\n$/)
  // The link itself: its stat names its target resolved in the container; following it finds nothing.
  const link = await httpUnix(s.socket, 'HEAD', q('/shadowlink'))
  assert.equal(link.status, 200)
  assert.equal(statOf(link).linkTarget, '/etc/shadow')
  assert.equal(statOf(link).mode & 2 ** 27, 2 ** 27, 'Go ModeSymlink bit')
  assert.equal((await httpUnix(s.socket, 'GET', q('/shadowlink/'))).status, 404)
  const tar = await httpUnix(s.socket, 'GET', q('/shadowlink'))
  assert.equal(tar.status, 200)
  assert.match((await run('tar', ['-tv'], { input: tar.body })).stdout.toString(), /shadowlink -> \/etc\/shadow/)
})

test('archive attacks: tar entries that climb out, links followed by files, a destination linked to "/"', async (t) => {
  if (!canRun(t)) return
  const { s, id } = await serverWithContainer(t)
  const work = shortTempDir(t, 'strata-api-evil-')
  const marker = `strata-escape-${randomBytes(6).toString('hex')}`
  t.after(() => {
    for (const p of [`/tmp/${marker}`, `/${marker}`]) rmSync(p, { recursive: true, force: true })
  })
  const put = async (path: string, tarPath: string): Promise<{ status: number; text: string }> => httpUnix(s.socket, 'PUT', `/v1.41/containers/${id}/archive?path=${encodeURIComponent(path)}`, { body: readFileSync(tarPath), headers: { 'Content-Type': 'application/x-tar' } })

  const climb = join(work, 'climb.tar')
  await writeTarFile(climb, [{ name: `../../../../../../../tmp/${marker}`, data: Buffer.from('out\n') }])
  const r1 = await put('/tmp', climb)
  assert.equal(r1.status, 400, r1.text)
  assert.ok(!existsSync(`/tmp/${marker}`))

  const linkThenFile = join(work, 'link.tar')
  await writeTarFile(linkThenFile, [
    { name: 'evil', type: 'symlink', linkname: '/' },
    { name: `evil/tmp/${marker}`, data: Buffer.from('out\n') },
  ])
  const r2 = await put('/tmp', linkThenFile)
  assert.ok(r2.status === 200 || r2.status === 400, r2.text)
  assert.ok(!existsSync(`/tmp/${marker}`), 'a file went through a symlink entry to the host')

  await inRootfs(s, async (rootfs) => {
    await symlink('/', join(rootfs, 'dest'))
  })
  const plain = join(work, 'plain.tar')
  await writeTarFile(plain, [{ name: marker, data: Buffer.from('inside\n') }])
  assert.equal((await put('/dest', plain)).status, 200)
  assert.ok(!existsSync(`/${marker}`), 'extracted into the host root')
  const back = await httpUnix(s.socket, 'GET', `/v1.41/containers/${id}/archive?path=/${marker}`)
  assert.equal(back.status, 200)
  assert.equal((await run('tar', ['-xO'], { input: back.body })).stdout.toString(), 'inside\n')
  // Not a directory, and a missing one.
  assert.equal((await put('/etc/passwd', plain)).status, 404)
  assert.equal((await put('/no/such/dir', plain)).status, 404)
  assert.equal((await strata(['check'], { root: s.root })).code, 0)
})

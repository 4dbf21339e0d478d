/**
 * The pure parts of containers, no root needed: how a container's Config
 * comes from its image's (daemon/create.go's merge rules), the runtime
 * spec built from it, and the resolv.conf filter (commit's --change
 * instructions are src/image's, test/image-changes.test.ts).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { filterResolvConf, runtimeSpec } from '../src/container/index.js'
import { commandOf, mergeContainerConfig } from '../src/container/config.js'
import { isStrataError } from '../src/errors/index.js'

const IMAGE = { Env: ['PATH=/bin', 'A=1'], Entrypoint: ['/entry'], Cmd: ['default'], WorkingDir: '/w', Labels: { a: 'x' } }

test("merge: a given Cmd keeps the image Entrypoint; Env in dockerd's order (the caller's, then the image's other keys); Labels merged", () => {
  const c = mergeContainerConfig(IMAGE, { cmd: ['mine'], env: ['A=2', 'B=3'], labels: { b: 'y' } }, 'img', 'abcdef123456')
  assert.deepEqual(commandOf(c), { path: '/entry', args: ['mine'] })
  assert.deepEqual(c.Env, ['A=2', 'B=3', 'PATH=/bin'], 'as docker inspect shows for docker create -e A=2 -e B=3')
  assert.deepEqual(mergeContainerConfig(IMAGE, { env: ['Z=9', 'A=2'] }, 'img', 'h').Env, ['Z=9', 'A=2', 'PATH=/bin'], "the caller's entries as given, not sorted (daemon.merge)")
  assert.equal(mergeContainerConfig({}, { cmd: ['x'] }, 'img', 'h').Env, null, 'no Env anywhere: null, as dockerd')
  assert.deepEqual(mergeContainerConfig(IMAGE, { env: [] }, 'img', 'h').Env, IMAGE.Env)
  assert.deepEqual(c.Labels, { a: 'x', b: 'y' })
  assert.equal(c.WorkingDir, '/w')
  assert.equal(c.Hostname, 'abcdef123456')
  assert.equal(c.Image, 'img')
  assert.deepEqual(Object.keys(c).slice(0, 3), ['Hostname', 'Domainname', 'User'], "Go's field order")
})

test('merge: a given Entrypoint drops the image Cmd; an empty one clears it; no command is an error', () => {
  assert.deepEqual(commandOf(mergeContainerConfig(IMAGE, { entrypoint: ['/other'] }, 'img', 'h')), { path: '/other', args: [] })
  const cleared = mergeContainerConfig(IMAGE, { entrypoint: [] }, 'img', 'h')
  assert.throws(() => commandOf(cleared), (e: unknown) => isStrataError(e, 'INVALID_ARGUMENT'))
  assert.throws(() => mergeContainerConfig(IMAGE, { env: ['=x'] }, 'img', 'h'), (e: unknown) => isStrataError(e, 'INVALID_ARGUMENT'))
})

test('runtime spec: argv, env defaults (PATH, HOSTNAME, HOME), cwd, user, limits, namespaces', () => {
  const config = mergeContainerConfig({ Env: ['X=1'] }, { cmd: ['sh', '-c', 'true'] }, 'img', 'abcdef123456')
  const spec = runtimeSpec(config, '/r', 'abcdef123456', { uid: 1000, gid: 100, home: '/home/u' }) as {
    process: { args: string[]; env: string[]; cwd: string; user: { uid: number; gid: number }; rlimits: Array<{ type: string; hard: number }> }
    hostname: string
    root: { path: string }
    linux: { namespaces: Array<{ type: string }> }
  }
  assert.deepEqual(spec.process.args, ['sh', '-c', 'true'])
  assert.deepEqual(spec.process.env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOSTNAME=abcdef123456', 'X=1', 'HOME=/home/u'])
  assert.equal(spec.process.cwd, '/')
  assert.equal(spec.process.user.uid, 1000)
  assert.equal(spec.hostname, 'abcdef123456')
  assert.equal(spec.root.path, '/r')
  assert.ok(spec.process.rlimits.every((r) => r.hard <= 1024), 'no limit above what root may set here')
  assert.ok(spec.linux.namespaces.some((n) => n.type === 'network'))
})

test('resolv.conf: localhost nameservers dropped, defaults when none is left', () => {
  assert.equal(filterResolvConf('search lan\nnameserver 10.0.0.1\nnameserver 127.0.0.53\n'), 'search lan\nnameserver 10.0.0.1\n')
  assert.equal(filterResolvConf('nameserver 127.0.0.1\noptions edns0\n'), 'options edns0\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n')
  assert.equal(filterResolvConf(''), 'nameserver 8.8.8.8\nnameserver 8.8.4.4\n')
})

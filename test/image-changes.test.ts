/**
 * The one `--change` engine (src/image/changes.ts), which `strata commit
 * --change` and `strata import --change` both use: the Dockerfile forms
 * one by one, then the same change sets given to dockerd 20.10's `docker
 * commit --change` and `docker import --change` and to strata's
 * commitContainer and importRootfs, whose configs must agree ($VAR
 * expansion, a relative WORKDIR, ENTRYPOINT dropping an inherited CMD,
 * ONBUILD triggers, the instructions refused). One known difference is
 * pinned: dockerd takes HEALTHCHECK, strata says NOT_SUPPORTED.
 */
import assert from 'node:assert/strict'
import { createReadStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { commitContainer, createContainer } from '../src/container/index.js'
import { isStrataError } from '../src/errors/index.js'
import { applyChanges } from '../src/image/index.js'
import { importRootfs } from '../src/transport/index.js'
import { containerEnv } from './helpers/container-env.js'
import { IMAGE_TAG, threeLayerArchive } from './helpers/docker-image.js'
import { requireDockerd, startDockerd } from './helpers/dockerd.js'
import { makeBusyboxRootfs } from './helpers/fixtures.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { tempDirFor } from './helpers/tmp.js'

test('changes: the Dockerfile forms docker import --change takes', () => {
  assert.deepEqual(applyChanges(['CMD echo "a b"']).Cmd, ['/bin/sh', '-c', 'echo "a b"'], 'shell form')
  assert.deepEqual(applyChanges(['cmd ["a", "b"]']).Cmd, ['a', 'b'], 'exec form, any case')
  // Variables expand from the Env before the instruction, as in a Dockerfile.
  const c = applyChanges(['ENV A=1', 'ENV B="two words" C=\'$A\' D=$A E=${A}x A=2', 'ENV F g h', 'ENV A=3'])
  assert.deepEqual(c.Env, ['A=3', 'B=two words', 'C=$A', 'D=1', 'E=1x', 'F=g h'])
  assert.deepEqual(applyChanges(['CMD x', 'ENTRYPOINT ["/e"]']).Cmd, ['/bin/sh', '-c', 'x'], 'ENTRYPOINT keeps a CMD set before it')
  assert.equal(applyChanges(['ENTRYPOINT ["/e"]'], { Cmd: ['old'] }).Cmd, null, 'and drops an inherited one')
  assert.deepEqual(applyChanges(['EXPOSE 80 53/udp 8000-8002']).ExposedPorts, { '80/tcp': {}, '53/udp': {}, '8000/tcp': {}, '8001/tcp': {}, '8002/tcp': {} })
  assert.deepEqual(applyChanges(['VOLUME /a /b', 'VOLUME ["/c"]']).Volumes, { '/a': {}, '/b': {}, '/c': {} })
  assert.equal(applyChanges(['WORKDIR /a', 'WORKDIR b/../c']).WorkingDir, '/a/c')
  assert.equal(applyChanges(['USER 1000:1000']).User, '1000:1000')
  assert.deepEqual(applyChanges(['LABEL a=b "c d"=e']).Labels, { a: 'b', 'c d': 'e' })
  assert.throws(() => applyChanges(['STOPSIGNAL SIGKILL']), /stopsignal is not a valid change command/, 'as dockerd 20.10 says')
  assert.deepEqual(applyChanges(['ONBUILD RUN echo $A', 'onbuild  add . /app']).OnBuild, ['RUN echo $A', 'add . /app'], 'the trigger as written')
  assert.throws(() => applyChanges(['ONBUILD ONBUILD RUN x']), /Chaining ON BUILD/)
  assert.throws(() => applyChanges(['ONBUILD FROM x']), /FROM isn't allowed as an ONBUILD trigger/)
  assert.throws(() => applyChanges(['HEALTHCHECK NONE']), (e: unknown) => isStrataError(e, 'NOT_SUPPORTED'))
  assert.throws(() => applyChanges(['FROM scratch']), /from is not a valid change command/)
  assert.throws(() => applyChanges(['ENV =x']), /ENV names can not be blank/)
})

test('commit changes: exec and shell forms, ENV pairs, EXPOSE, unknown instructions refused', () => {
  const c = applyChanges(['CMD echo hi', 'ENTRYPOINT ["/bin/e"]', 'ENV A=1 B="x y"', 'ENV C 3', 'EXPOSE 80 53/udp', 'USER 1000'], { Env: ['A=0'] })
  assert.deepEqual(c.Cmd, ['/bin/sh', '-c', 'echo hi'])
  assert.deepEqual(c.Entrypoint, ['/bin/e'])
  assert.deepEqual(c.Env, ['A=1', 'B=x y', 'C=3'])
  assert.deepEqual(c.ExposedPorts, { '80/tcp': {}, '53/udp': {} })
  assert.equal(c.User, '1000')
  assert.throws(() => applyChanges(['FROM x'], {}), /from is not a valid change command/)
})

/** Change sets given to both dockerd and strata. */
const CHANGE_SETS: Record<string, string[]> = {
  'expansion, relative WORKDIR, CMD kept by a later ENTRYPOINT': [
    'ENV A=1 B="two words"',
    'ENV C=$A D=${B:-x} E=${NOPE:-dflt} F=${A:+set} G=\'$A\'',
    'WORKDIR /srv',
    'WORKDIR app',
    'WORKDIR $A',
    'USER $A:0',
    'LABEL "with space"="v 1" k=$A',
    'EXPOSE 80 53/udp 8000-8001',
    'VOLUME ["/data"]',
    'VOLUME /a $A',
    'CMD ["run", "$A"]',
    'ENTRYPOINT /bin/entry $A',
  ],
  'ENTRYPOINT alone drops the inherited CMD': ['ENTRYPOINT ["/bin/sh", "-c"]'],
  'ENV legacy form, PATH extended, shell CMD': ['ENV PATH=$PATH:/opt/bin', 'ENV H one two', 'CMD echo "$H"'],
  'ONBUILD triggers as written': ['ENV A=1', 'ONBUILD RUN echo $A', 'onbuild  add . /app'],
}

/** Instructions both refuse, and the words of dockerd's refusal. */
const REFUSED: Array<[string, RegExp]> = [
  ['RUN true', /run is not a valid change command/],
  ['FROM scratch', /from is not a valid change command/],
  ['STOPSIGNAL SIGKILL', /stopsignal is not a valid change command/],
  ['ONBUILD FROM x', /FROM isn't allowed as an ONBUILD trigger/],
]

/** The container.Config fields --change writes (the rest of a commit's config comes from create). */
const CHANGED_FIELDS = ['User', 'ExposedPorts', 'Env', 'Cmd', 'Volumes', 'WorkingDir', 'Entrypoint', 'OnBuild', 'Labels']

function changedFields(config: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(CHANGED_FIELDS.filter((k) => k in config).map((k) => [k, config[k]]))
}

function changeArgs(changes: string[]): string[] {
  return changes.flatMap((c) => ['--change', c])
}

test('commit --change and import --change: strata’s configs are dockerd’s for the same instructions', { timeout: 600_000 }, async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'busybox', 'tar') || !requireDockerd(t)) return
  const dir = tempDirFor(t, 'image-changes-dockerd-')
  const rootfs = join(dir, 'rootfs')
  await makeBusyboxRootfs(rootfs)
  const tar = join(dir, 'rootfs.tar')
  await run('tar', ['--numeric-owner', '-C', rootfs, '-cf', tar, '.'])
  const archive = await threeLayerArchive(t)

  // dockerd: one container to commit, the rootfs to import, each change set on both.
  const docker = { commit: new Map<string, Record<string, unknown>>(), import: new Map<string, string>(), refusals: new Map<string, string[]>() }
  const dockerd = await startDockerd(t, { storageDriver: 'vfs' })
  try {
    const configOf = async (id: string): Promise<Record<string, unknown>> => {
      const raw = await readFile(join(dockerd.dataRoot, 'image', 'vfs', 'imagedb', 'content', 'sha256', id.trim().replace(/^sha256:/, '')), 'utf8')
      return JSON.parse(raw) as Record<string, unknown>
    }
    await dockerd.docker(['load', '-i', archive])
    await dockerd.docker(['create', '--name', 'changes', IMAGE_TAG, 'sh', '-c', 'true'])
    for (const [name, changes] of Object.entries(CHANGE_SETS)) {
      const committed = await dockerd.docker(['commit', ...changeArgs(changes), 'changes'])
      docker.commit.set(name, (await configOf(committed.stdout.toString())).config as Record<string, unknown>)
      const imported = await dockerd.docker(['import', ...changeArgs(changes), tar])
      docker.import.set(name, JSON.stringify((await configOf(imported.stdout.toString())).config))
    }
    for (const [change] of REFUSED) {
      const said: string[] = []
      for (const args of [['commit', '--change', change, 'changes'], ['import', '--change', change, tar]]) {
        await dockerd.docker(args).then(
          () => said.push('accepted'),
          (err: Error) => said.push(err.message),
        )
      }
      docker.refusals.set(change, said)
    }
    // One known difference: HEALTHCHECK, which dockerd takes and strata does not implement.
    await dockerd.docker(['commit', '--change', 'HEALTHCHECK NONE', 'changes'])
  } finally {
    await dockerd.stop()
  }

  // strata: the same on the same image and rootfs.
  const env = await containerEnv(t, 'vfs')
  const c = await createContainer(env.store, IMAGE_TAG, { cmd: ['sh', '-c', 'true'] })
  for (const [name, changes] of Object.entries(CHANGE_SETS)) {
    const { imageId } = await commitContainer(env.store, c.id, { changes })
    const config = (await env.store.images.get(imageId)).config.config as Record<string, unknown>
    assert.deepEqual(changedFields(config), changedFields(docker.commit.get(name)!), `commit: ${name}`)
    const imported = await importRootfs(env.store, createReadStream(tar), { changes })
    const raw = JSON.parse((await env.store.images.get(imported.id)).raw.toString()) as { config: unknown }
    assert.equal(JSON.stringify(raw.config), docker.import.get(name), `import: ${name} (the whole config, in Go's field order)`)
  }
  for (const [change, words] of REFUSED) {
    const said = docker.refusals.get(change)!
    assert.equal(said.length, 2)
    for (const s of said) assert.match(s, words, `dockerd refuses ${change}`)
    await assert.rejects(commitContainer(env.store, c.id, { changes: [change] }), (e: unknown) => isStrataError(e, 'INVALID_ARGUMENT') && words.test((e as Error).message))
    await assert.rejects(importRootfs(env.store, createReadStream(tar), { changes: [change] }), (e: unknown) => isStrataError(e, 'INVALID_ARGUMENT') && words.test((e as Error).message))
  }
  await assert.rejects(commitContainer(env.store, c.id, { changes: ['HEALTHCHECK NONE'] }), (e: unknown) => isStrataError(e, 'NOT_SUPPORTED'))
})

/**
 * The image verbs as a user runs them (the `strata` command, package.json "bin"):
 * images, image ls/inspect/history/tag/rm/prune, inspect, history, tag,
 * rmi, system df and info, on a store of small real images: exact tables,
 * JSON that parses, exit codes 0/1/2, --help everywhere. Then the same
 * verbs beside dockerd 20.10 on the same docker-saved image: inspect,
 * history, images, system df and rmi must print what docker prints.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { test, type TestContext } from 'node:test'
import { chainIds } from '../src/digest/index.js'
import { Store } from '../src/store/index.js'
import { MNT_DETACH, umount2 } from '../src/sys/index.js'
import { IMAGE_TAG, readDockerArchive, threeLayerArchive } from './helpers/docker-image.js'
import { mountsAtOrUnder, requireDockerd, startDockerd } from './helpers/dockerd.js'
import { bytes, layerTar, makeImage, type MadeImage } from './helpers/image-fixtures.js'
import { requireRoot } from './helpers/peers.js'
import { STRATA_CLI } from './helpers/strata-cli.js'

const CLI = STRATA_CLI

interface Run {
  code: number
  stdout: string
  stderr: string
}

function strata(root: string, args: string[], driver = 'vfs'): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, STRATA_ROOT: root, STRATA_DRIVER: driver } })
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
}

/** Runs and expects exit 0. */
function ok(root: string, args: string[], driver = 'vfs'): string {
  const r = strata(root, args, driver)
  assert.equal(r.code, 0, `strata ${args.join(' ')}: ${r.stderr}`)
  return r.stdout
}

/** A scratch dir removed after the test, anything still mounted under it detached first. */
function scratch(t: TestContext, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `strata-test-cli-images-${name}-`))
  t.after(() => {
    for (const m of mountsAtOrUnder([dir])) umount2(m, MNT_DETACH)
    rmSync(dir, { recursive: true, force: true })
  })
  return dir
}

const DIGEST = `sha256:${'d'.repeat(64)}`
const LONG_CMD = "/bin/sh -c echo 'a very long command line that docker cuts' > /b"

interface World {
  A: MadeImage
  B: MadeImage
  D: MadeImage
}

/** base:1 (1000 B, 5 h old); app:1 app:2 app@DIGEST (+234 B, 4 h, parent base:1); a dangling one (+5 B, 3 h). */
async function world(root: string): Promise<World> {
  const store = await Store.open({ root, driver: 'vfs' })
  try {
    const ago = (minutes: number): string => new Date(Date.now() - minutes * 60_000).toISOString()
    const base = layerTar({ base: bytes(1000) })
    const A = await makeImage(store, { layers: [base], created: ago(310), tags: ['base:1'] })
    const B = await makeImage(store, {
      layers: [base, layerTar({ b: bytes(234) })],
      created: ago(250),
      parent: A.id,
      tags: ['app:1', 'app:2'],
      history: [
        { created: ago(310), created_by: '/bin/sh -c #(nop) ADD file:base in /' },
        { created: ago(250), created_by: LONG_CMD, comment: 'note' },
      ],
    })
    await store.references.addDigest(`app@${DIGEST}`, B.id)
    const D = await makeImage(store, { layers: [base, layerTar({ d: bytes(5) })], created: ago(190) })
    return { A, B, D }
  } finally {
    await store.close()
  }
}

const short = (img: MadeImage): string => img.id.slice(7, 19)

test('every image verb has --help (exit 0) and refuses bad usage as docker does', (t) => {
  const root = scratch(t, 'usage')
  for (const args of [
    ['images'], ['image'], ['image', 'ls'], ['image', 'inspect'], ['image', 'history'], ['image', 'tag'], ['image', 'rm'], ['image', 'prune'],
    ['inspect'], ['history'], ['tag'], ['rmi'], ['system'], ['system', 'df'], ['info'],
  ]) {
    const r = strata(root, [...args, '--help'])
    assert.equal(r.code, 0, `${args.join(' ')} --help: ${r.stderr}`)
    assert.match(r.stdout, /^Usage: strata /, `${args.join(' ')} --help`)
  }
  assert.match(ok(root, ['--help']), /\n {2}images +List images/)
  for (const args of [
    ['images', 'a', 'b'], ['images', '--bogus'], ['history'], ['history', 'a', 'b'], ['tag', 'x'],
    ['rmi'], ['inspect'], ['image', 'bogus'], ['image', 'prune'], ['image', 'prune', '-a'], ['system', 'bogus'], ['system', 'df', 'x'],
  ]) {
    const r = strata(root, args)
    assert.ok(r.code === 1 || r.code === 125, `${args.join(' ')}: ${r.code} ${r.stdout}${r.stderr}`)
    assert.equal(r.stdout, '', args.join(' '))
    assert.match(r.stderr, /^[^\n]+\nSee 'strata [a-z ]+--help'\.?\n/, `${args.join(' ')}: docker's usage error`)
  }
  assert.match(strata(root, ['image', 'prune']).stderr, /add -f \(--force\)/)
})

test('images, inspect, history, system df and info on small images', async (t) => {
  if (!requireRoot(t)) return
  const root = join(scratch(t, 'list'), 'root')
  const { A, B, D } = await world(root)

  assert.equal(
    ok(root, ['images']),
    'REPOSITORY   TAG       IMAGE ID       CREATED       SIZE\n' +
      `<none>       <none>    ${short(D)}   3 hours ago   1kB\n` +
      `app          1         ${short(B)}   4 hours ago   1.23kB\n` +
      `app          2         ${short(B)}   4 hours ago   1.23kB\n` +
      `base         1         ${short(A)}   5 hours ago   1kB\n`,
  )
  assert.equal(ok(root, ['image', 'ls', '-q']), `${short(D)}\n${short(B)}\n${short(B)}\n${short(A)}\n`, 'one ID per row, as docker prints them')
  assert.equal(ok(root, ['images', '-q', '--no-trunc', 'base']), `${A.id}\n`)
  const digests = ok(root, ['images', '--digests', 'app'])
  assert.equal(
    digests,
    `REPOSITORY   TAG       DIGEST${' '.repeat(68)}IMAGE ID       CREATED       SIZE\n` +
      `app          1         ${DIGEST}   ${short(B)}   4 hours ago   1.23kB\n` +
      `app          2         ${DIGEST}   ${short(B)}   4 hours ago   1.23kB\n`,
  )
  const json = ok(root, ['images', '--format', 'json'])
  assert.match(json, /"Digest":"\\u003cnone\\u003e"/, 'HTML characters escaped as Go does')
  const rows = json.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, string>)
  assert.equal(rows.length, 4)
  assert.deepEqual(Object.keys(rows[1]!), ['Containers', 'CreatedAt', 'CreatedSince', 'Digest', 'ID', 'Repository', 'SharedSize', 'Size', 'Tag', 'UniqueSize', 'VirtualSize'])
  assert.deepEqual({ ...rows[1], CreatedAt: '' }, {
    Containers: 'N/A', CreatedAt: '', CreatedSince: '4 hours ago', Digest: '<none>', ID: short(B), Repository: 'app', SharedSize: 'N/A',
    Size: '1.23kB', Tag: '1', UniqueSize: 'N/A', VirtualSize: '1.234kB',
  })

  const inspect = strata(root, ['image', 'inspect', 'app:1', 'nosuch'])
  assert.equal(inspect.code, 1)
  assert.equal(inspect.stderr, 'Error: No such image: nosuch\n')
  assert.match(inspect.stdout, /^\[\n {4}\{\n {8}"Id": "sha256:/, "docker's 4-space indent")
  const [info] = JSON.parse(inspect.stdout) as Array<{ Id: string; RepoDigests: string[]; Size: number; GraphDriver: unknown }>
  assert.equal(info!.Id, B.id)
  assert.deepEqual(info!.RepoDigests, [`app@${DIGEST}`])
  assert.equal(info!.Size, 1234)
  assert.deepEqual(info!.GraphDriver, { Data: null, Name: 'vfs' })
  assert.equal(strata(root, ['inspect', 'nosuch']).stdout, '[]\n')
  assert.equal((JSON.parse(ok(root, ['inspect', short(A), 'base:1'])) as unknown[]).length, 2)

  assert.equal(
    ok(root, ['history', 'app:2']),
    'IMAGE          CREATED       CREATED BY                                      SIZE      COMMENT\n' +
      `${short(B)}   4 hours ago   /bin/sh -c echo 'a very long command line th…   234B      note\n` +
      `${short(A)}   5 hours ago   /bin/sh -c #(nop) ADD file:base in /            1kB       \n`,
  )
  assert.match(ok(root, ['image', 'history', '--no-trunc', 'app:2']), new RegExp(`^${B.id} +4 hours ago +${LONG_CMD.replace(/[.*()']/g, '\\$&')} +234B +note\n`, 'm'))
  assert.equal(ok(root, ['history', '-q', short(D)]), `${short(D)}\n<missing>\n`)
  const hist = ok(root, ['history', '--format', 'json', 'app:1']).trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, string>)
  assert.deepEqual(hist.map((h) => [h.ID, h.Size, h.Comment, Object.keys(h).join()]), [
    [short(B), '234B', 'note', 'Comment,CreatedAt,CreatedBy,CreatedSince,ID,Size'],
    [short(A), '1kB', '', 'Comment,CreatedAt,CreatedBy,CreatedSince,ID,Size'],
  ])
  assert.equal(strata(root, ['history', 'nosuch']).code, 1)

  assert.equal(
    ok(root, ['system', 'df']),
    'TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n' +
      'Images          3         0         1.239kB   1.239kB (100%)\n' +
      'Containers      0         0         0B        0B\n' +
      'Local Volumes   0         0         0B        0B\n' +
      'Build Cache     0         0         0B        0B\n',
  )
  const df = ok(root, ['system', 'df', '--format', 'json']).trimEnd().split('\n').map((l) => JSON.parse(l) as unknown)
  assert.deepEqual(df[0], { Active: '0', Reclaimable: '1.239kB (100%)', Size: '1.239kB', TotalCount: '3', Type: 'Images' })
  assert.equal(df.length, 4)
  const verbose = ok(root, ['system', 'df', '-v'])
  assert.match(verbose, new RegExp(`^Images space usage:\n\nREPOSITORY +TAG +IMAGE ID +CREATED +SIZE +SHARED SIZE +UNIQUE SIZE +CONTAINERS\n`))
  assert.match(verbose, new RegExp(`\napp +1 +${short(B)} +4 hours ago +1.234kB +1kB +234B +0\n`))
  assert.match(verbose, /\nBuild cache usage: 0B\n/)
  assert.equal((JSON.parse(ok(root, ['system', 'df', '-v', '--format', 'json'])) as { LayersSize: number }).LayersSize, 1239)
  assert.match(ok(root, ['info']), /^Containers: 0\n Running: 0\n Paused: 0\n Stopped: 0\nImages: 3\nStorage Driver: vfs\n/)
  assert.equal((JSON.parse(ok(root, ['info', '--format', 'json'])) as { Images: number }).Images, 3)
})

test('tag, rmi and image prune print what docker prints and exit 1 on a conflict', async (t) => {
  if (!requireRoot(t)) return
  const root = join(scratch(t, 'rmi'), 'root')
  const { A, B, D } = await world(root)

  assert.equal(ok(root, ['tag', 'base:1', 'copy']), '')
  assert.equal(ok(root, ['image', 'tag', short(A), 'localhost:5000/x/y:2']), '')
  assert.match(ok(root, ['images', 'localhost:5000/x/y']), new RegExp(`\nlocalhost:5000/x/y +2 +${short(A)} `))
  assert.equal(strata(root, ['tag', 'nosuch', 'x']).code, 1)
  assert.equal(ok(root, ['rmi', 'copy', 'localhost:5000/x/y:2']), 'Untagged: copy:latest\nUntagged: localhost:5000/x/y:2\n')

  const child = strata(root, ['rmi', short(A)])
  assert.equal(child.code, 1)
  assert.equal(child.stderr, `Error: conflict: unable to delete ${short(A)} (cannot be forced) - image has dependent child images\n`)
  const several = strata(root, ['rmi', short(B)])
  assert.equal(several.code, 1)
  assert.equal(several.stderr, `Error: conflict: unable to delete ${short(B)} (must be forced) - image is referenced in multiple repositories\n`)
  const missing = strata(root, ['rmi', 'nosuch', 'app:2'])
  assert.equal(missing.code, 1, 'an image that does not exist fails rmi')
  assert.equal(missing.stdout, 'Untagged: app:2\n', 'the other images are still removed')
  assert.equal(missing.stderr, 'Error: No such image: nosuch\n')
  const forced = strata(root, ['rmi', '-f', 'nosuch', short(B)])
  assert.equal(forced.code, 0, 'with -f a missing image is only reported')
  assert.equal(forced.stderr, 'Error: No such image: nosuch\n')
  assert.equal(forced.stdout, `Untagged: app:1\nUntagged: app@${DIGEST}\nDeleted: ${B.id}\nDeleted: ${B.chain[1]}\n`)

  assert.equal(
    ok(root, ['image', 'prune', '-f']),
    `Deleted Images:\ndeleted: ${D.id}\ndeleted: ${D.chain[1]}\n\nTotal reclaimed space: 5B\n`,
  )
  assert.equal(ok(root, ['image', 'prune', '-f']), 'Total reclaimed space: 0B\n')
  assert.equal(
    ok(root, ['image', 'prune', '-f', '-a']),
    `Deleted Images:\nuntagged: base:1\ndeleted: ${A.id}\ndeleted: ${A.chain[0]}\n\nTotal reclaimed space: 1kB\n`,
  )
  assert.equal(ok(root, ['images']), 'REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n')
})

test('the same docker-saved image in dockerd and in strata: inspect, history, images, df and rmi print alike', { timeout: 300_000 }, async (t) => {
  if (!requireRoot(t) || !requireDockerd(t)) return
  const archive = await threeLayerArchive(t)
  const image = await readDockerArchive(archive)
  const dir = scratch(t, 'dockerd')
  const root = join(dir, 'strata')

  const store = await Store.open({ root, driver: 'overlay2' })
  try {
    const results = await store.layers.registerChain(
      image.layers.map((tar, i) => ({ open: async () => Readable.from([tar]), expectedDiffId: image.diffIds[i]! })),
      null,
    )
    await store.images.create(image.configBytes)
    for (const r of results) await r.layer.release()
    await store.references.addTag(IMAGE_TAG, image.imageId)
  } finally {
    await store.close()
  }
  const dockerd = await startDockerd(t, { storageDriver: 'overlay2', dataRoot: join(dir, 'docker') })
  await dockerd.docker(['load', '-i', archive])
  const docker = async (args: string[]): Promise<string> => (await dockerd.docker(args)).stdout.toString()
  const mine = (args: string[]): string => ok(root, args, 'overlay2')

  // inspect: the same text once the data-root paths and the tag time are set aside.
  const normalise = (text: string): string => {
    const [obj] = JSON.parse(text) as Array<{ GraphDriver: { Data: Record<string, string> | null }; Metadata: { LastTagTime: string } }>
    assert.deepEqual(Object.keys(obj!.GraphDriver.Data ?? {}), ['LowerDir', 'MergedDir', 'UpperDir', 'WorkDir'])
    obj!.GraphDriver.Data = null
    obj!.Metadata.LastTagTime = ''
    return JSON.stringify([obj], null, 4)
  }
  assert.equal(normalise(mine(['image', 'inspect', IMAGE_TAG])), normalise(await docker(['image', 'inspect', IMAGE_TAG])))

  // history and images as JSON lines (ages aside: a second may pass between the two).
  const lines = (text: string): unknown[] =>
    text.trimEnd().split('\n').map((l) => {
      const o = JSON.parse(l) as Record<string, string>
      delete o.CreatedSince
      return o
    })
  for (const args of [['history', '--format', '{{json .}}', IMAGE_TAG], ['history', '--no-trunc', '--format', '{{json .}}', IMAGE_TAG], ['images', '--format', '{{json .}}']]) {
    const ours = args.map((a) => (a === '{{json .}}' ? 'json' : a))
    assert.deepEqual(lines(mine(ours)), lines(await docker(args)), `strata ${ours.join(' ')}`)
  }
  // The history table, ages masked.
  const maskAge = (text: string): string => text.replace(/(Less than a second|About an? \w+|\d+ \w+) ago/g, 'AGE').replace(/ {2,}/g, '  ')
  assert.equal(maskAge(mine(['history', IMAGE_TAG])), maskAge(await docker(['history', IMAGE_TAG])))
  assert.equal(mine(['system', 'df']), await docker(['system', 'df']))

  // rmi by tag: the same untag, image and three layers, in the same order.
  const rmi = mine(['rmi', IMAGE_TAG])
  assert.equal(rmi, await docker(['rmi', IMAGE_TAG]))
  const chains = chainIds(image.diffIds)
  assert.equal(rmi, `Untagged: ${IMAGE_TAG}\nDeleted: ${image.imageId}\n${chains.reverse().map((c) => `Deleted: ${c}\n`).join('')}`)
  await dockerd.stop()
})

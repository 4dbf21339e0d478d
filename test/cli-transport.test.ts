/**
 * `strata load`, `save` and `import` as a user runs them: output lines as
 * docker prints them, stdin and stdout, progress bars only on a terminal,
 * usage errors, and archives that are broken (truncated, a layer or the
 * config altered, not an archive at all) failing with one line and
 * leaving the store as it was.
 *
 * The image is the real 3-layer docker-archive dockerd makes
 * (threeLayerArchive, cached); the store uses vfs (small image, nothing to
 * mount) except where a test says otherwise.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { layerProgress, LayerProgressBars, progressSize, renderProgress, type ProgressSink } from '../src/cli/progress.js'
import { parseDigest, sha256Of } from '../src/digest/index.js'
import { Store } from '../src/store/index.js'
import type { LayerProgress } from '../src/transport/types.js'
import { readDockerArchive, threeLayerArchive } from './helpers/docker-image.js'
import { requireDockerd } from './helpers/dockerd.js'
import { makeBusyboxRootfs } from './helpers/fixtures.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { strata, strataOnTty } from './helpers/strata-cli.js'
import { tempDirFor } from './helpers/tmp.js'
import { diffTrees, snapshotTree } from './helpers/tree.js'

const TAG = 'strata-test-3layers:latest'
const DRIVER = 'vfs'

/** Needs root (the store), the cached dockerd-made archive (built once with dockerd), GNU tar. */
function canRun(t: Parameters<typeof requireRoot>[0]): boolean {
  return requireRoot(t) && requireTool(t, 'tar', 'busybox', 'script') && requireDockerd(t)
}

async function storeState(root: string): Promise<{ images: string[]; layers: string[]; refs: string[] }> {
  const store = await Store.open({ root, driver: DRIVER })
  try {
    return {
      images: await store.images.list(),
      layers: (await store.layers.list()).map((l) => l.chainId).sort(),
      refs: (await store.references.all()).map((r) => `${JSON.stringify(r)}`).sort(),
    }
  } finally {
    await store.close()
  }
}

// ---------------------------------------------------------------- progress.ts

class RecordingSink implements ProgressSink {
  text = ''
  constructor(
    readonly isTTY: boolean,
    readonly columns?: number,
  ) {}
  write(s: string): void {
    this.text += s
  }
}

function event(layer: number, phase: LayerProgress['phase'], current: number, total?: number): LayerProgress {
  const diffId = parseDigest(`sha256:${String(layer).repeat(64)}`)
  return { image: 0, layer, diffId, phase, current, ...(total === undefined ? {} : { total }) }
}

test('progress: numbers and bar as docker draws them', () => {
  assert.equal(progressSize(0), '0B')
  assert.equal(progressSize(512), '512B')
  assert.equal(progressSize(1_048_576), '1.049MB')
  assert.equal(progressSize(2_129_920), '2.13MB')
  // Half way on a wide terminal: 25 cells, the numbers right-aligned in 8 (as dockerd 20.10's load draws it).
  assert.equal(renderProgress(1_048_576, 2_097_152, 150), `[${'='.repeat(25)}>${' '.repeat(25)}]  1.049MB/2.097MB`)
  assert.equal(renderProgress(2_129_920, 2_129_920, 150), `[${'='.repeat(50)}>]   2.13MB/2.13MB`)
  assert.equal(renderProgress(32_768, 2_129_920, 150), `[>${' '.repeat(50)}]  32.77kB/2.13MB`)
  // Narrow terminal: no bar. Unknown total: the count alone.
  assert.equal(renderProgress(1_048_576, 2_097_152, 100), ' 1.049MB/2.097MB')
  assert.equal(renderProgress(1_048_576, undefined, 150), ' 1.049MB')
})

test('progress: one line per moving layer, redrawn in place; nothing for skipped layers or off a terminal', () => {
  let now = 0
  const sink = new RecordingSink(true, 150)
  const bars = new LayerProgressBars(sink, 'Loading layer', () => now)
  bars.listener(event(1, 'waiting', 0, 100))
  bars.listener(event(2, 'exists', 0, 100))
  assert.equal(sink.text, '', 'waiting and existing layers draw nothing')
  bars.listener(event(3, 'copying', 0, 1000))
  const line3 = `333333333333: Loading layer [>${' '.repeat(50)}]       0B/1kB`
  assert.equal(sink.text, `\n\x1b[1A\x1b[2K\r${line3}\r\x1b[1B`)
  sink.text = ''
  bars.listener(event(4, 'copying', 0, 2000))
  now = 10
  bars.listener(event(3, 'copying', 500, 1000)) // throttled: too soon after the last draw
  assert.equal(sink.text, `\n\x1b[1A\x1b[2K\r444444444444: Loading layer [>${' '.repeat(50)}]       0B/2kB\r\x1b[1B`)
  sink.text = ''
  now = 20
  bars.listener(event(3, 'done', 1000, 1000)) // a phase change always draws; layer 3 is two lines up
  assert.equal(sink.text, `\x1b[2A\x1b[2K\r333333333333: Loading layer [${'='.repeat(50)}>]      1kB/1kB\r\x1b[2B`)
  sink.text = ''
  bars.listener(event(4, 'copying', 1000, 2000))
  now = 30
  bars.listener(event(4, 'copying', 1500, 2000))
  bars.finish() // the throttled update is drawn at the end
  assert.match(sink.text, /1\.5kB\/2kB/)

  const quiet = new RecordingSink(false)
  const off = layerProgress(quiet, 'Loading layer')
  assert.equal(off.onProgress, undefined, 'no listener when stdout is not a terminal')
  assert.equal(layerProgress(new RecordingSink(true), 'Loading layer', true).onProgress, undefined, 'no listener with -q')
})

// ---------------------------------------------------------------- usage

test('load, save, import: --help, usage errors exit 2 with one line', async (t) => {
  const dir = tempDirFor(t, 'cli-transport-usage-')
  const root = join(dir, 'root')
  for (const verb of ['load', 'save', 'import']) {
    const help = await strata([verb, '--help'], { root })
    assert.equal(help.code, 0, help.stderr)
    assert.match(help.text, new RegExp(`^Usage: strata ${verb} `))
  }
  const main = await strata(['--help'], { root })
  for (const verb of ['load', 'save', 'import']) assert.match(main.text, new RegExp(`^  ${verb} `, 'm'))
  for (const args of [
    ['load', 'extra.tar'],
    ['load', '--nope'],
    ['save'],
    ['save', '--format', 'tar', '-o', join(dir, 'x.tar'), 'img'],
    ['save', '--format', 'oci-layout', 'img'],
    ['import'],
    ['import', 'a', 'b', 'c'],
    ['import', '--platform', 'amd64', 'x.tar'],
  ]) {
    const r = await strata(args, { root })
    assert.ok(r.code === 1 || r.code === 125, `${args.join(' ')}: ${r.code} ${r.stderr}`)
    assert.match(r.stderr, /^[^\n]+\nSee 'strata [a-z]+ --help'\.\n/, args.join(' '))
  }
  assert.equal(existsSync(root), false, 'usage errors do not create the data root')
})

// ---------------------------------------------------------------- load

test('load from -i and from stdin prints docker\'s lines; loading again reuses the layers', async (t) => {
  if (!canRun(t)) return
  const archive = await threeLayerArchive(t)
  const original = await readDockerArchive(archive)
  const dir = tempDirFor(t, 'cli-transport-load-')
  const root = join(dir, 'root')

  const first = await strata(['load', '-i', archive], { root, driver: DRIVER })
  assert.equal(first.code, 0, first.stderr)
  assert.equal(first.text, `Loaded image: ${TAG}\n`)
  assert.equal(first.stderr, '')
  const state = await storeState(root)
  assert.deepEqual(state.images, [original.imageId])
  assert.equal(state.layers.length, 3)

  const again = await strata(['load'], { root, driver: DRIVER, stdinFile: archive })
  assert.equal(again.code, 0, again.stderr)
  assert.equal(again.text, `Loaded image: ${TAG}\n`)
  assert.deepEqual(await storeState(root), state, 'loading the same image again changes nothing')
  assert.deepEqual(readdirSync(join(root, 'tmp')), [], 'the stdin spool is removed')

  // An archive whose image has no RepoTags: docker prints the ID instead.
  const unpacked = join(dir, 'unpacked')
  mkdirSync(unpacked)
  await run('tar', ['-xf', archive, '-C', unpacked])
  const manifest = JSON.parse(readFileSync(join(unpacked, 'manifest.json'), 'utf8')) as Array<{ RepoTags: string[] | null }>
  manifest[0]!.RepoTags = null
  writeFileSync(join(unpacked, 'manifest.json'), JSON.stringify(manifest))
  const untagged = join(dir, 'untagged.tar')
  await run('tar', ['-cf', untagged, '-C', unpacked, ...readdirSync(unpacked)])
  const root2 = join(dir, 'root2')
  const byId = await strata(['load', '-q', '-i', untagged], { root: root2, driver: DRIVER })
  assert.equal(byId.code, 0, byId.stderr)
  assert.equal(byId.text, `Loaded image ID: ${original.imageId}\n`)
})

test('load on a terminal draws a bar per layer, then the Loaded line; -q draws none; no -i on a terminal is refused', async (t) => {
  if (!canRun(t)) return
  const archive = await threeLayerArchive(t)
  const original = await readDockerArchive(archive)
  const dir = tempDirFor(t, 'cli-transport-tty-')

  const tty = await strataOnTty(['load', '-i', archive], { root: join(dir, 'a'), driver: DRIVER, columns: 150 })
  assert.equal(tty.code, 0, tty.output)
  for (const [i, diffId] of original.diffIds.entries()) {
    const size = progressSize(original.layers[i]!.length)
    // The last drawing of each bar is full and shows the layer's size twice.
    const final = new RegExp(`${diffId.slice(7, 19)}: Loading layer \\[={50}>\\] +${size.replace('.', '\\.')}/${size.replace('.', '\\.')}`)
    assert.match(tty.output, final, `layer ${i} bar`)
  }
  // As docker: the cursor rests on the line below the bars, where the Loaded line goes.
  assert.match(tty.output, new RegExp(`\\r\\x1b\\[1BLoaded image: ${TAG}\\r\\n$`))
  assert.equal((tty.output.match(/\r\n/g) ?? []).length, 4, 'one new line per layer, then the Loaded line')

  const quiet = await strataOnTty(['load', '-q', '-i', archive], { root: join(dir, 'b'), driver: DRIVER })
  assert.equal(quiet.code, 0, quiet.output)
  assert.equal(quiet.output.replace(/\r\n/g, '\n'), `Loaded image: ${TAG}\n`)

  const stdinTty = await strataOnTty(['load'], { root: join(dir, 'c'), driver: DRIVER })
  assert.equal(stdinTty.code, 1)
  assert.equal(stdinTty.output.replace(/\r\n/g, '\n'), 'Error: requested load from stdin, but stdin is empty\n')
})

// ---------------------------------------------------------------- save

test('save writes docker-archive, oci-archive and oci-layout that load back to the same image; stdout when piped, never a terminal', async (t) => {
  if (!canRun(t)) return
  const archive = await threeLayerArchive(t)
  const original = await readDockerArchive(archive)
  const dir = tempDirFor(t, 'cli-transport-save-')
  const root = join(dir, 'root')
  const loaded = await strata(['load', '-i', archive], { root, driver: DRIVER })
  assert.equal(loaded.code, 0, loaded.stderr)

  // -o FILE and stdout: the same image, config bytes and layer tars as the original.
  const saved = join(dir, 'saved.tar')
  const toFile = await strata(['save', '-o', saved, TAG], { root, driver: DRIVER })
  assert.equal(toFile.code, 0, toFile.stderr)
  assert.equal(toFile.text, '')
  const piped = await strata(['save', TAG], { root, driver: DRIVER })
  assert.equal(piped.code, 0, piped.stderr)
  writeFileSync(join(dir, 'piped.tar'), piped.stdout)
  for (const path of [saved, join(dir, 'piped.tar')]) {
    const image = await readDockerArchive(path)
    assert.ok(image.configBytes.equals(original.configBytes), `${path}: config bytes kept`)
    assert.deepEqual(image.diffIds, original.diffIds)
    assert.deepEqual(image.layers.map((l) => sha256Of(l)), original.layers.map((l) => sha256Of(l)), `${path}: layer tars byte for byte`)
    assert.deepEqual(image.repoTags, [TAG])
  }
  assert.deepEqual(readdirSync(join(root, 'tmp')), [], 'the stdout spool is removed')

  // Every format loads back, into a fresh root, as the same image ID.
  const ociArchive = join(dir, 'oci.tar')
  const layout = join(dir, 'layout')
  for (const [format, out] of [['oci-archive', ociArchive], ['oci-layout', layout]] as const) {
    const r = await strata(['save', '--format', format, '-o', out, original.imageId.slice(7, 19)], { root, driver: DRIVER })
    assert.equal(r.code, 0, `${format}: ${r.stderr}`)
  }
  for (const input of [saved, ociArchive, layout]) {
    const fresh = join(dir, `fresh-${input.split('/').pop()}`)
    const r = await strata(['load', '-i', input], { root: fresh, driver: DRIVER })
    assert.equal(r.code, 0, `${input}: ${r.stderr}`)
    assert.deepEqual((await storeState(fresh)).images, [original.imageId], `${input} loads as the same image`)
  }

  const onTty = await strataOnTty(['save', TAG], { root, driver: DRIVER })
  assert.equal(onTty.code, 1)
  assert.equal(onTty.output.replace(/\r\n/g, '\n'), 'Error: cowardly refusing to save to a terminal. Use the -o flag or redirect\n')

  const missing = await strata(['save', '-o', join(dir, 'missing.tar'), 'no-such-image:1'], { root, driver: DRIVER })
  assert.equal(missing.code, 1)
  assert.match(missing.stderr, /^Error: saving no-such-image:1: .*no-such-image.*\n$/)
  assert.equal(existsSync(join(dir, 'missing.tar')), false, 'a failed save leaves no file')
  assert.deepEqual(readdirSync(dir).filter((n) => n.includes('tmp')), [], 'nor a temp file beside it')
})

// ---------------------------------------------------------------- import

test('import makes a one-layer image from a rootfs tar (file or stdin), applies -c/-m/--platform, prints the ID', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar', 'busybox', 'gzip')) return
  const dir = tempDirFor(t, 'cli-transport-import-')
  const root = join(dir, 'root')
  const rootfs = join(dir, 'rootfs')
  mkdirSync(rootfs)
  await makeBusyboxRootfs(rootfs)
  const tar = join(dir, 'rootfs.tar')
  await run('tar', ['--numeric-owner', '-C', rootfs, '-cf', tar, '.'])
  const diffId = sha256Of(readFileSync(tar))

  const r = await strata(['import', '-m', 'made by a test', '-c', 'CMD ["/bin/sh"]', '-c', 'ENV A=1', '--platform', 'linux/arm64/v8', tar, 'imported:v1'], { root, driver: DRIVER })
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.text, /^sha256:[a-f0-9]{64}\n$/)
  const id = r.text.trim()
  const store = await Store.open({ root, driver: DRIVER })
  try {
    const image = await store.images.get(id)
    assert.deepEqual(image.config.rootfs.diff_ids, [diffId])
    assert.deepEqual(image.config.config?.Cmd, ['/bin/sh'])
    assert.ok(image.config.config?.Env?.includes('A=1'))
    assert.equal(image.config.architecture, 'arm64')
    assert.equal(image.config.variant, 'v8')
    assert.equal(image.config.history?.[0]?.comment, 'made by a test')
    assert.equal(await store.references.get('imported:v1'), id)
  } finally {
    await store.close()
  }

  // From stdin, gzip'd, no tag: docker's default comment.
  const gz = join(dir, 'rootfs.tar.gz')
  await run('sh', ['-c', `gzip -c ${tar} > ${gz}`])
  const fromStdin = await strata(['import', '-'], { root, driver: DRIVER, stdinFile: gz })
  assert.equal(fromStdin.code, 0, fromStdin.stderr)
  const store2 = await Store.open({ root, driver: DRIVER })
  try {
    const image = await store2.images.get(fromStdin.text.trim())
    assert.deepEqual(image.config.rootfs.diff_ids, [diffId], 'the same layer, decompressed')
    assert.equal(image.config.history?.[0]?.comment, 'Imported from -')
  } finally {
    await store2.close()
  }

  const before = await storeState(root)
  for (const args of [['import', join(dir, 'nope.tar')], ['import', '/etc/hostname', 'x:1'], ['import', tar, 'Bad:Name']]) {
    const bad = await strata(args, { root, driver: DRIVER })
    assert.equal(bad.code, 1, `${args.join(' ')}: ${bad.stderr}`)
    assert.match(bad.stderr, /^Error: importing [^\n]+\n$/, args.join(' '))
  }
  assert.deepEqual(await storeState(root), before, 'failed imports leave the store as it was')
})

// ---------------------------------------------------------------- bad archives

test('broken archives fail with exit 1 and one line, and leave the store unchanged', async (t) => {
  if (!canRun(t)) return
  const archive = await threeLayerArchive(t)
  const original = await readDockerArchive(archive)
  const dir = tempDirFor(t, 'cli-transport-bad-')
  const root = join(dir, 'root')
  const bytes = readFileSync(archive)

  // The store holds something already (the image's base layer, imported), so "unchanged" means something.
  const base = join(dir, 'base.tar')
  writeFileSync(base, original.layers[0]!)
  const imported = await strata(['import', base, 'base:1'], { root, driver: DRIVER })
  assert.equal(imported.code, 0, imported.stderr)

  const replaceOnce = (buf: Buffer, from: string, to: string): Buffer => {
    const at = buf.indexOf(from)
    assert.ok(at >= 0 && buf.indexOf(from, at + 1) < 0, `"${from}" occurs once in the archive`)
    const out = Buffer.from(buf)
    out.write(to, at)
    return out
  }
  // The config's own copy of "amd64" (the v1 json files of the layers repeat it).
  const alterConfig = (buf: Buffer): Buffer => {
    const at = buf.indexOf(original.configBytes)
    assert.ok(at >= 0, 'the config is stored as is')
    const out = Buffer.from(buf)
    const arch = at + original.configBytes.indexOf('"architecture":"amd64"')
    assert.ok(arch >= at)
    out.write('"architecture":"amd65"', arch)
    return out
  }
  // saved as an OCI archive by strata, to break a blob that has a digest.
  const oci = join(dir, 'oci.tar')
  const loadRoot = join(dir, 'loadroot')
  assert.equal((await strata(['load', '-i', archive], { root: loadRoot, driver: DRIVER })).code, 0)
  const savedOci = await strata(['save', '--format', 'oci-archive', '-o', oci, TAG], { root: loadRoot, driver: DRIVER })
  assert.equal(savedOci.code, 0, savedOci.stderr)

  const cases: Array<[string, Buffer, RegExp]> = [
    ['truncated', bytes.subarray(0, Math.floor(bytes.length / 2)), /./],
    // "one\n" is the content of /data/one in the second layer: the layer no longer hashes to its diffID.
    ['layer-altered', replaceOnce(bytes, 'one\n', 'One\n'), /sha256:|digest|diff/i],
    // The config no longer hashes to its name, the image ID.
    ['config-altered', alterConfig(bytes), /sha256:|digest|config/i],
    ['oci-blob-altered', replaceOnce(readFileSync(oci), 'one\n', 'One\n'), /sha256:|digest/i],
    ['not-an-archive', Buffer.from('this is not a tar archive\n'.repeat(40)), /./],
  ]
  const snapshot = (): ReturnType<typeof snapshotTree> =>
    snapshotTree(root, { dirMtimes: false, ignore: (p) => p === 'tmp' || p.startsWith('tmp/') })
  const before = await snapshot()
  for (const [name, content, why] of cases) {
    const path = join(dir, `${name}.tar`)
    writeFileSync(path, content)
    for (const how of ['-i', 'stdin'] as const) {
      const r = how === '-i' ? await strata(['load', '-i', path], { root, driver: DRIVER }) : await strata(['load'], { root, driver: DRIVER, stdinFile: path })
      assert.equal(r.code, 1, `${name} (${how}): exit 1; stdout ${r.text} stderr ${r.stderr}`)
      assert.equal(r.text, '', `${name} (${how}): nothing on stdout`)
      assert.match(r.stderr, /^Error: loading [^\n]+\n$/, `${name} (${how}): one line`)
      assert.match(r.stderr, why, `${name} (${how}): says why`)
      assert.deepEqual(diffTrees(before, await snapshot()), [], `${name} (${how}): the store is unchanged`)
      assert.deepEqual(readdirSync(join(root, 'tmp')), [], `${name} (${how}): no spool left`)
    }
  }
})

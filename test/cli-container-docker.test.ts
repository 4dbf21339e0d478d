/**
 * Container verbs side by side with the docker 20.10 CLI on dockerd 20.10
 * (overlay2), on the same busybox tar imported into both:
 * - `inspect` / `container inspect` of a container: docker's full
 *   ContainerJSON (the same keys in the same order at every level, the
 *   same values where they do not name IDs, times, paths or the network);
 *   `inspect` finding a container or an image, --type, and the refusals;
 * - `commit`: the config's Env in dockerd's order (the caller's, then the
 *   image's other keys), docker_version, top-level keys sorted;
 * - `export`: /etc/hostname, /etc/hosts and /etc/resolv.conf as docker
 *   exports them (the init layer's empty files);
 * - the bug "commit c2 Bad:Tag leaves a dangling image".
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { requireDockerd } from './helpers/dockerd.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { sideBySide, type Outcome } from './helpers/side-by-side.js'

/** Values that differ between two daemons for the same container: IDs, times, host paths, names of the network. */
const VOLATILE = new Set(['Id', 'Created', 'Image', 'Hostname', 'LowerDir', 'MergedDir', 'UpperDir', 'WorkDir', 'StartedAt', 'FinishedAt', 'ResolvConfPath', 'HostnamePath', 'HostsPath', 'LogPath', 'SandboxID', 'SandboxKey'])
/** Where strata differs on purpose (no daemon logs, the "none" network), and Ulimits, which dockerd lists in its map's random order. */
const OWN = new Set(['LogConfig', 'NetworkMode', 'Networks', 'Ulimits'])

/**
 * The caller's -e entries come back from docker 20.10 in a random order
 * (seen: `-e Z=9 -e A=3` as [A=3, Z=9, B=1] or [Z=9, A=3, B=1] from run to
 * run, the cause not found), so they are compared as a set;
 * the image's entries after them keep their order. strata keeps the order
 * given (daemon.merge; container-config.test.ts).
 */
function envShape(env: unknown): unknown {
  if (!Array.isArray(env)) return env
  const user = env.filter((e) => /^[AZ]=/.test(String(e))).sort()
  return [...user, ...env.filter((e) => !/^[AZ]=/.test(String(e)))]
}

function sameShape(a: unknown, b: unknown, path: string): void {
  if (path.endsWith('.Env')) {
    assert.deepEqual(envShape(a), envShape(b), path)
    return
  }
  if (Array.isArray(a) && Array.isArray(b) && a.some((x) => typeof x === 'object' && x !== null)) {
    assert.equal(a.length, b.length, `${path}: length`)
    a.forEach((x, i) => sameShape(x, b[i], `${path}[${i}]`))
    return
  }
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null || Array.isArray(a)) {
    assert.deepEqual(a, b, path)
    return
  }
  assert.deepEqual(Object.keys(a), Object.keys(b), `${path}: keys and their order`)
  for (const k of Object.keys(a)) {
    if (VOLATILE.has(k) || OWN.has(k)) continue
    sameShape((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${path}.${k}`)
  }
}

test("container inspect, commit and export beside docker 20.10: the same JSON, Env order, docker_version, /etc files; commit Bad:Tag leaves no dangling image", { timeout: 240_000 }, async (t) => {
  if (!requireRoot(t) || !requireDockerd(t) || !requireTool(t, 'runc', 'tar')) return
  const { dir, tar, docker, strata } = await sideBySide(t, 'cli-container-docker-', 'overlay2')
  const both = (args: string[]): [Outcome, Outcome] => {
    const out = [docker(args), strata(args)] as [Outcome, Outcome]
    out.forEach((r, i) => assert.equal(r.code, 0, `${i === 0 ? 'docker' : 'strata'} ${args.join(' ')}: ${r.stderr}`))
    return out
  }
  both(['import', '-c', 'ENV B=1 A=2', '-c', 'CMD ["sh"]', tar, 'bb:1'])
  both(['create', '--name', 'c1', '-e', 'Z=9', '-e', 'A=3', '--label', 'k=v', 'bb:1', 'sh', '-c', 'echo hi > /f'])
  const runC2 = ['run', '--name', 'c2', 'bb:1', 'sh', '-c', 'echo 12345 > /f; exit 3']
  assert.deepEqual([docker(runC2).code, strata(runC2).code], [3, 3])

  // inspect: the whole document.
  for (const args of [['inspect', 'c1'], ['container', 'inspect', 'c2'], ['inspect', '-s', 'c2']]) {
    const want = JSON.parse(docker(args).stdout) as Array<{ Config: Record<string, unknown> }>
    // The test's dockerd runs with --bridge=none, which marks a started container's config NetworkDisabled.
    for (const w of want) delete w.Config.NetworkDisabled
    const got = JSON.parse(strata(args).stdout) as unknown[]
    sameShape(got, want, args.join(' '))
  }
  for (const args of [
    ['inspect', '-f', '{{.Name}} {{.State.Status}} {{.State.ExitCode}} {{len .Config.Env}} {{index .Config.Env 2}} {{.Config.Labels.k}} {{.Path}} {{json .Args}}', 'c1', 'c2'],
    ['inspect', '-s', '-f', '{{.SizeRw}} {{.SizeRootFs}}', 'c2'],
    ['inspect', '-f', '{{.RepoTags}}', 'bb:1'],
    ['inspect', '-f', '{{.Name}}', 'c1', 'bb:1', 'nope'],
    ['inspect', 'nope'],
    ['inspect', '--type', 'container', 'bb:1'],
    ['inspect', '--type', 'image', '-f', '{{.Os}}', 'bb:1'],
    ['container', 'inspect', 'nope'],
  ]) {
    const [want, got] = [docker(args), strata(args)]
    const what = args.join(' ')
    assert.equal(got.code, want.code, `${what}: exit status (docker: ${want.stderr})`)
    assert.equal(got.stdout, want.stdout, what)
    assert.equal(got.stderr, want.stderr.replace(/^Error response from daemon: /gm, 'Error: '), what)
  }

  // commit: Env order, docker_version, sorted keys.
  both(['commit', '-m', 'msg', '-a', 'me', 'c1', 'bb:2'])
  const configOf = async (cli: string, save: (args: string[]) => Outcome): Promise<Record<string, unknown>> => {
    const out = join(dir, `${cli}-save`)
    mkdirSync(out)
    const archive = join(dir, `${cli}.tar`)
    assert.equal(save(['save', '-o', archive, 'bb:2']).code, 0)
    await run('tar', ['-C', out, '-xf', archive])
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as Array<{ Config: string }>
    return JSON.parse(readFileSync(join(out, manifest[0]!.Config), 'utf8')) as Record<string, unknown>
  }
  const [want, got] = [await configOf('docker', docker), await configOf('strata', strata)]
  assert.deepEqual(Object.keys(got), Object.keys(want), "the config's top-level keys, sorted as dockerd writes them")
  assert.deepEqual((got.config as { Env: string[] }).Env, ['Z=9', 'A=3', 'B=1'], "strata: the container's Env as created, the image's after")
  assert.deepEqual(envShape((want.config as { Env: string[] }).Env), ['A=3', 'Z=9', 'B=1'])
  assert.equal(typeof got.docker_version, 'string')
  assert.equal(strata(['image', 'inspect', '-f', '{{.DockerVersion}}', 'bb:2']).stdout.trim(), got.docker_version)

  // export: the runtime files as the init layer has them.
  const etc = (cli: (args: string[]) => Outcome, c: string): string => {
    const archive = join(dir, `${cli === docker ? 'd' : 's'}-${c}.tar`)
    assert.equal(cli(['export', '-o', archive, c]).code, 0)
    const r = spawnSync('tar', ['-tvf', archive, '--numeric-owner', './etc/hostname', './etc/hosts', './etc/resolv.conf', 'etc/hostname', 'etc/hosts', 'etc/resolv.conf'], { encoding: 'utf8' })
    return r.stdout.split('\n').filter((l) => l !== '').map((l) => l.replace(/ \d{4}-\d\d-\d\d \d\d:\d\d /, ' ')).sort().join('\n')
  }
  for (const c of ['c1', 'c2']) {
    const want = etc(docker, c)
    assert.match(want, /etc\/hosts/)
    assert.equal(etc(strata, c), want, `export ${c}: /etc files`)
  }

  // The bug: a bad reference made the image first, then failed to tag it.
  const dangling = (): string => strata(['images', '-q', '--filter', 'dangling=true']).stdout
  const before = dangling()
  const bad = strata(['commit', 'c2', 'Bad:Tag'])
  assert.equal(bad.code, 1)
  assert.match(bad.stderr, /^Error: .*invalid reference format: repository name must be lowercase\n$/)
  assert.equal(dangling(), before, 'no image was made')
})

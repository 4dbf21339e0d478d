/**
 * `strata stats` held against the docker 20.10 CLI's own `docker stats`
 * run through `strata serve` on the same data root: the same containers
 * (one spinning a CPU, one asleep, one never started), the same columns,
 * headers, units and template errors; the figures checked for what they
 * must be (the spinning one near a whole CPU, the sleeping one near none,
 * one process each, the memory limit the machine's). The stream: a table a
 * second after docker's clear-screen codes, containers appearing and going
 * as they start and stop, the process ending when its reader goes away.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { DOCKER_20, dockerOn, importBusybox, startStrataServe } from './helpers/api-server.js'
import { requireRoot, requireTool } from './helpers/peers.js'
import { STRATA_CLI, strata } from './helpers/strata-cli.js'

function canRun(t: TestContext): boolean {
  return requireRoot(t) && requireTool(t, 'busybox', 'tar', 'runc', DOCKER_20)
}

const CLEAR = '\u001b[2J\u001b[H'
const HEADER = /^CONTAINER ID +NAME +CPU % +MEM USAGE \/ LIMIT +MEM % +NET I\/O +BLOCK I\/O +PIDS$/

/** A stats table's rows by container name: its cells split on docker's padding (3+ blanks; a cell holds single blanks). */
function rowsByName(table: string): Map<string, string[]> {
  const lines = table.trimEnd().split('\n')
  assert.match(lines[0]!, HEADER)
  return new Map(lines.slice(1).map((l) => {
    const cells = l.trim().split(/ {2,}/)
    return [cells[1]!, cells] as const
  }))
}

test('strata stats --no-stream: docker stats\' table, columns and figures, beside docker 20.10 through strata serve', async (t) => {
  if (!canRun(t)) return
  const s = await startStrataServe(t)
  await importBusybox(t, s.root)
  const ok = async (args: string[]): Promise<string> => {
    const r = await strata(args, { root: s.root })
    assert.equal(r.code, 0, `strata ${args.join(' ')}: ${r.stderr}`)
    return r.text
  }
  const busy = (await ok(['run', '-d', '--name', 'busy', 'busybox', 'sh', '-c', 'while :; do :; done'])).trim()
  const idle = (await ok(['run', '-d', '--name', 'idle', 'busybox', 'sleep', '300'])).trim()
  const never = (await ok(['create', '--name', 'never', 'busybox', 'true'])).trim()

  const [mine, theirs] = await Promise.all([strata(['stats', '--no-stream'], { root: s.root }), dockerOn(s, ['stats', '--no-stream'])])
  assert.equal(mine.code, 0, mine.stderr)
  assert.equal(theirs.code, 0, theirs.stderr)
  assert.equal(mine.text.split('\n')[0], theirs.stdout.split('\n')[0], 'the same header, padded the same')
  for (const [who, out] of [['strata', mine.text], ['docker', theirs.stdout]] as const) {
    const rows = rowsByName(out)
    assert.deepEqual([...rows.keys()].sort(), ['busy', 'idle'], `${who}: the running containers only`)
    const b = rows.get('busy')!
    const i = rows.get('idle')!
    assert.equal(b[0], busy.slice(0, 12))
    assert.equal(i[0], idle.slice(0, 12))
    // A spinning shell takes most of a CPU over the second between the two readings; sleep takes none.
    assert.ok(Number.parseFloat(b[2]!) > 40, `${who}: busy at ${b[2]}`)
    assert.ok(Number.parseFloat(i[2]!) < 5, `${who}: idle at ${i[2]}`)
    for (const cells of [b, i]) {
      assert.match(cells[2]!, /^\d+\.\d\d%$/)
      assert.match(cells[3]!, /^\d+(\.\d+)?(B|KiB|MiB) \/ \d+(\.\d+)?GiB$/)
      assert.match(cells[4]!, /^\d+\.\d\d%$/)
      assert.equal(cells[5], '0B / 0B', 'no network but loopback')
      assert.match(cells[6]!, /^\d+(\.\d+)?[kMG]?B \/ \d+(\.\d+)?[kMG]?B$/)
      assert.equal(cells[7], '1', 'one process')
    }
  }
  // The limit (no --memory: the machine's) is the same figure in both.
  assert.equal(rowsByName(mine.text).get('idle')![3]!.split(' / ')[1], rowsByName(theirs.stdout).get('idle')![3]!.split(' / ')[1])

  // Named, in the order given, a template, the full IDs: the same text (no figure in it that moves).
  const format = '{{.Container}}: {{.Name}} {{.ID}} {{.PIDs}} {{.NetIO}}'
  for (const args of [['--format', format, 'idle', busy.slice(0, 12), 'never'], ['--no-trunc', '--format', 'table {{.ID}}\t{{.Name}}\t{{.PIDs}}', 'never', 'idle'], ['-a', '--format', '{{.Name}} {{.PIDs}}']]) {
    const [a, b] = await Promise.all([strata(['stats', '--no-stream', ...args], { root: s.root }), dockerOn(s, ['stats', '--no-stream', ...args])])
    assert.equal(a.code, 0, a.stderr)
    assert.equal(b.code, 0, b.stderr)
    const sorted = (text: string): string[] => text.split('\n').sort()
    assert.deepEqual(sorted(a.text), sorted(b.stdout), `stats --no-stream ${args.join(' ')}`)
  }
  const named = await strata(['stats', '--no-stream', '--format', '{{.Container}} {{.ID}} {{.MemUsage}} {{.CPUPerc}}', 'never'], { root: s.root })
  assert.equal(named.text, `never ${never.slice(0, 12)} 0B / 0B 0.00%\n`, 'a container that does not run: zeros')

  // A template docker cannot run: its error, nothing on stdout, exit 1, as docker says it.
  const [bad, badDocker] = await Promise.all([strata(['stats', '--no-stream', '--format', '{{.Nope}}'], { root: s.root }), dockerOn(s, ['stats', '--no-stream', '--format', '{{.Nope}}'])])
  assert.equal(bad.code, 1)
  assert.equal(bad.text, '')
  assert.notEqual(badDocker.code, 0)
  assert.match(bad.stderr, /can't evaluate field Nope in type \*container\.statsContext/)
  assert.match(badDocker.stderr, /can't evaluate field Nope in type \*container\.statsContext/)

  // A name that is no container: said, exit 1, no table.
  const missing = await strata(['stats', '--no-stream', 'nosuch', 'idle'], { root: s.root })
  assert.equal(missing.code, 1)
  assert.equal(missing.text, '')
  assert.match(missing.stderr, /^Error: No such container: nosuch\n$/)
})

test('strata stats streams a table a second; containers come and go; it ends when its reader does', async (t) => {
  if (!canRun(t)) return
  const s = await startStrataServe(t)
  await importBusybox(t, s.root)
  assert.equal((await strata(['run', '-d', '--name', 'first', 'busybox', 'sleep', '300'], { root: s.root })).code, 0)

  const child = spawn(process.execPath, [STRATA_CLI, '--root', s.root, 'stats'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, STRATA_ROOT: '', STRATA_DRIVER: '' } })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })))
  t.after(() => child.kill('SIGKILL'))
  let out = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => (out += c.toString()))
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
  /** The frames so far (each a table after the clear-screen codes). */
  const frames = (): string[] => out.split(CLEAR).slice(1)
  const waitFor = async (what: string, ok: (frame: string) => boolean): Promise<void> => {
    for (let i = 0; i < 150; i++) {
      const f = frames()
      if (f.length > 0 && ok(f[f.length - 1]!)) return
      await sleep(100)
    }
    assert.fail(`${what}; frames: ${JSON.stringify(frames().slice(-2))}; stderr: ${stderr}`)
  }
  await waitFor('first shown', (f) => rowsByName(f).has('first'))
  const seen = frames().length
  assert.equal(out.indexOf(CLEAR), 0, 'every table starts with the clear-screen codes')
  assert.equal((await strata(['run', '-d', '--name', 'second', 'busybox', 'sleep', '300'], { root: s.root })).code, 0)
  await waitFor('second appears', (f) => rowsByName(f).has('second') && rowsByName(f).has('first'))
  assert.equal((await strata(['stop', '-t', '1', 'first'], { root: s.root })).code, 0)
  await waitFor('first goes once stopped', (f) => !rowsByName(f).has('first') && rowsByName(f).has('second'))
  assert.ok(frames().length > seen, 'new tables kept coming')
  // A held stats takes no lock: a removal goes through while it runs.
  assert.equal((await strata(['rm', 'first'], { root: s.root })).code, 0)

  // The reader goes away (as `strata stats | head` would): the next table finds no one and the process ends.
  child.stdout.destroy()
  const end = await Promise.race([exited, sleep(5000).then(() => undefined)])
  assert.ok(end !== undefined, 'stats ended within 5 s of its reader leaving')
  assert.equal(end.code, 0, stderr)
})

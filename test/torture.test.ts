/**
 * Torture (issue 22): N processes × M rounds of random verbs on one data
 * root (overlay2) — load, tag, rmi, container create / mount / umount /
 * commit / rm, image prune, check, check --repair — with random kill -9
 * of any of them. Each worker names its own tags and containers, and
 * keeps what its finished (not killed) verbs reported: an object whose
 * last verb was killed is unknown, the others present or absent. Then:
 * every check that was not killed found nothing wrong, the final check
 * (after --repair removed what the kills left) is clean, every object the
 * survivors reported is there or gone as reported, and every image left
 * saves (each layer exported and verified) and every container mounts.
 *
 * Short form in npm test; the long form is scripts/torture.sh
 * (STRATA_TORTURE_WORKERS, STRATA_TORTURE_ROUNDS).
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { test } from 'node:test'
import { MNT_DETACH, umount2 } from '../src/sys/index.js'
import { Store } from '../src/store/index.js'
import { mountsAtOrUnder } from './helpers/dockerd.js'
import { makeBusyboxRootfs, randomBytesSeeded } from './helpers/fixtures.js'
import { layerTar, makeImage } from './helpers/image-fixtures.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { STRATA_CLI, strata } from './helpers/strata-cli.js'
import { tempDirFor } from './helpers/tmp.js'

const DRIVER = 'overlay2'
const WORKERS = Number(process.env.STRATA_TORTURE_WORKERS ?? 4)
const ROUNDS = Number(process.env.STRATA_TORTURE_ROUNDS ?? 30)
/** The chance that a verb is killed, after a random delay of up to KILL_MS. */
const KILL_RATE = 0.25
const KILL_MS = 400

interface Outcome {
  code: number
  killed: boolean
  stdout: string
  stderr: string
}

/** Runs strata; with `killAfter`, kill -9 after that many ms if it still runs. */
function runStrata(root: string, args: string[], killAfter?: number): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [STRATA_CLI, '--root', root, '-s', DRIVER, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, STRATA_ROOT: '', STRATA_DRIVER: '' } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const timer = killAfter === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), killAfter)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      if (timer !== undefined) clearTimeout(timer)
      resolve({ code: code ?? 128, killed: signal === 'SIGKILL', stdout, stderr })
    })
  })
}

type State = 'present' | 'absent' | 'unknown'

test(`torture: ${WORKERS} processes × ${ROUNDS} rounds of random verbs with random kill -9, then check clean and nothing reported lost`, { timeout: 1_800_000 }, async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar', 'busybox')) return
  // Registered before tempDirFor's removal hook (t.after hooks run oldest first): nothing stays mounted under the scratch dir.
  let work = ''
  t.after(() => {
    if (work !== '') for (const m of mountsAtOrUnder([work])) umount2(m, MNT_DETACH)
  })
  work = tempDirFor(t, 'torture-')
  const root = join(work, 'root')

  // Three images on a busybox base, saved as archives tagged arch-K:1.
  const rootfs = join(work, 'rootfs')
  await makeBusyboxRootfs(rootfs)
  await run('tar', ['--numeric-owner', '-C', rootfs, '-cf', join(work, 'base.tar'), '.'])
  const { readFileSync } = await import('node:fs')
  const base = readFileSync(join(work, 'base.tar'))
  const src = await Store.open({ root: join(work, 'src'), driver: DRIVER })
  try {
    for (let k = 0; k < 3; k++) await makeImage(src, { layers: [base, layerTar({ [`own${k}`]: randomBytesSeeded(512 << 10, k + 1) })], created: '2024-01-01T00:00:00Z', tags: [`arch-${k}:1`] })
  } finally {
    await src.close()
  }
  const archives: string[] = []
  for (let k = 0; k < 3; k++) {
    const file = join(work, `arch-${k}.tar`)
    const r = await strata(['save', '-o', file, `arch-${k}:1`], { root: join(work, 'src'), driver: DRIVER })
    assert.equal(r.code, 0, r.stderr)
    archives.push(file)
  }

  const wrongChecks: string[] = []
  let kills = 0
  let verbs = 0
  const images = new Map<string, State>()
  const containers = new Map<string, State>()
  const mounted = new Map<string, number>()

  const worker = async (w: number): Promise<void> => {
    let n = 0
    const rnd = (k: number): number => Math.floor(Math.random() * k)
    const own = (m: Map<string, State>, prefix: string): string[] => [...m.keys()].filter((k) => k.startsWith(prefix) && m.get(k) !== 'absent')
    for (let round = 0; round < ROUNDS; round++) {
      n++
      const killAfter = Math.random() < KILL_RATE ? Math.random() * KILL_MS : undefined
      const exec = async (args: string[]): Promise<Outcome> => {
        verbs++
        const o = await runStrata(root, args, killAfter)
        if (o.killed) kills++
        return o
      }
      const k = rnd(3)
      const myTags = own(images, `w${w}-`)
      const myCts = own(containers, `w${w}-`)
      switch (rnd(10)) {
        case 0: {
          await exec(['load', '-q', '-i', archives[k]!])
          break
        }
        case 1: {
          const tag = `w${w}-t:${n}`
          const o = await exec(['tag', `arch-${k}:1`, tag])
          if (o.killed) images.set(tag, 'unknown')
          else if (o.code === 0) images.set(tag, 'present')
          break
        }
        case 2: {
          if (myTags.length === 0) break
          const tag = myTags[rnd(myTags.length)]!
          const o = await exec(['rmi', tag])
          if (o.killed) images.set(tag, 'unknown')
          else if (o.code === 0) images.set(tag, 'absent')
          break
        }
        case 3: {
          const name = `w${w}-c${n}`
          const o = await exec(['container', 'create', '--name', name, `arch-${k}:1`, 'sh'])
          if (o.killed) containers.set(name, 'unknown')
          else if (o.code === 0) containers.set(name, 'present')
          break
        }
        case 4: {
          if (myCts.length === 0) break
          const name = myCts[rnd(myCts.length)]!
          const o = await exec(['container', 'mount', name])
          if (!o.killed && o.code === 0) mounted.set(name, (mounted.get(name) ?? 0) + 1)
          break
        }
        case 5: {
          if (myCts.length === 0) break
          const name = myCts[rnd(myCts.length)]!
          const tag = `w${w}-commit:${n}`
          const o = await exec(['container', 'commit', name, tag])
          if (o.killed) images.set(tag, 'unknown')
          else if (o.code === 0) images.set(tag, 'present')
          break
        }
        case 6: {
          if (myCts.length === 0) break
          const name = myCts[rnd(myCts.length)]!
          const o = await exec(['container', 'rm', '-f', name])
          if (o.killed) containers.set(name, 'unknown')
          else if (o.code === 0) {
            containers.set(name, 'absent')
            mounted.delete(name)
          }
          break
        }
        case 7: {
          await exec(['image', 'prune', '-f'])
          break
        }
        default: {
          const repair = rnd(2) === 0
          const o = await exec(['check', '--format', 'json', ...(repair ? ['--repair'] : [])])
          if (o.killed) break
          // Nothing a live verb does, nor anything a kill left (swept on open: debris), is a failure.
          const failures = o.stdout
            .split('\n')
            .filter((l) => l !== '')
            .map((l) => JSON.parse(l) as { kind: string; repaired?: string; severity?: string })
            .filter((p) => p.repaired === undefined && p.severity !== 'warning')
          if (failures.length > 0 || o.code !== 0) wrongChecks.push(`check${repair ? ' --repair' : ''}: ${JSON.stringify(failures)} ${o.stderr}`)
        }
      }
    }
  }
  await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)))
  t.diagnostic(`${verbs} verbs, ${kills} killed`)
  assert.deepEqual(wrongChecks, [], 'no check that ran to its end found anything wrong')

  // What the kills left: debris and orphans, removed by one repair; then a strict check.
  const repair = await runStrata(root, ['check', '--repair', '--format', 'json'])
  const unrepaired = repair.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as { kind: string; repaired?: string; severity?: string })
    .filter((p) => p.repaired === undefined)
  assert.deepEqual(unrepaired, [], `check --repair left problems: ${repair.stderr}`)
  const final = await runStrata(root, ['check'])
  assert.equal(final.stdout, 'No problems found\n', final.stderr)

  // Everything the survivors reported.
  const present: string[] = []
  for (const [tag, state] of images) {
    if (state === 'unknown') continue
    const o = await runStrata(root, ['image', 'inspect', tag])
    assert.equal(o.code === 0, state === 'present', `image ${tag} was reported ${state}`)
    if (state === 'present') present.push(tag)
  }
  for (const [name, state] of containers) {
    if (state === 'unknown') continue
    const o = await runStrata(root, ['container', 'mount', name])
    assert.equal(o.code === 0, state === 'present', `container ${name} was reported ${state}: ${o.stderr}`)
    if (o.code === 0) await runStrata(root, ['container', 'umount', name])
  }
  if (present.length > 0) {
    const saved = await runStrata(root, ['save', '-o', join(work, 'all.tar'), ...present])
    assert.equal(saved.code, 0, `every image reported present saves (layers verified): ${saved.stderr}`)
  }
  // Unmount what the workers mounted (counted mounts), so the scratch dir can go.
  for (const [name] of containers) await runStrata(root, ['container', 'rm', '-f', name])
})

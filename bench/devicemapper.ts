/**
 * The devicemapper driver next to overlay2 and vfs, side by side in the
 * test VM (this machine's kernel has no device-mapper; test/helpers/vm.ts):
 *
 * - "create + mount": a read-write layer on a base layer (a busybox root
 *   filesystem), then get (strata: createReadWrite + get). devicemapper:
 *   a thin snapshot message to the pool, the metadata file, activating the
 *   device and mounting its filesystem; overlay2: directories and an
 *   overlay mount; vfs: a copy of the base.
 * - "apply a 50 MB layer": applyDiff of a 50 MiB tar (50 files of 1 MiB
 *   random bytes, in 5 directories) onto a fresh child of the base layer,
 *   the child created untimed.
 *
 * The "strata" column is devicemapper, the peers are strata's own overlay2
 * and vfs drivers: there is no other program to compare a bare graph
 * driver with (dockerd offers no operation on bare layers, see
 * bench/graphdriver.ts). devicemapper runs with dockerd's defaults (loop
 * files 100 GB / 2 GB sparse, a 10 GB base device, xfs), the two others on
 * the guest's /tmp (ext4), where the loop files are too.
 *
 * All three run under qemu's emulation (TCG), so absolute times are many
 * times the host's; the ratios between drivers are what this measures.
 * Runs: 7 for create + mount, 3 for the apply, alternating drivers.
 *
 * On the host, `devicemapperBench` boots the VM once and runs this file
 * there (`node dist/bench/devicemapper.js OUT.json`); the guest writes its
 * results to a shared directory.
 */
import { randomBytes } from 'node:crypto'
import { createReadStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openDevmapperGraph } from '../src/graphdriver/devicemapper/index.js'
import { overlay2Factory, vfsFactory, type GraphDriver } from '../src/graphdriver/index.js'
import { makeBusyboxRootfs } from '../test/helpers/fixtures.js'
import { run } from '../test/helpers/peers.js'
import { REPO_ROOT, runInVm, vmUnavailable } from '../test/helpers/vm.js'
import { compare, type CaseResult, type Contender } from './harness.js'

const CREATE_RUNS = 7
const APPLY_RUNS = 3
const LAYER_FILES = 50
const FILE_BYTES = 1 << 20

type Log = (m: string) => void

const newId = (): string => randomBytes(32).toString('hex')

interface Lane {
  name: string
  driver: GraphDriver
  base: string
  /** Layers made by the timed runs, removed (put first) before the next run and at the end. */
  made: Array<{ id: string; mounted: boolean }>
}

async function tidy(lane: Lane): Promise<void> {
  for (const l of lane.made.splice(0)) {
    if (l.mounted) await lane.driver.put(l.id)
    await lane.driver.remove(l.id)
  }
}

/** In the guest: the three drivers on the same inputs. */
async function guestMain(out: string): Promise<void> {
  const log: Log = (m) => void process.stderr.write(`bench(vm): ${m}\n`)
  const work = await mkdtemp('/tmp/strata-bench-dm-')
  const lanes: Lane[] = []
  let dm: Awaited<ReturnType<typeof openDevmapperGraph>> | undefined
  try {
    const rootfs = join(work, 'busybox')
    await makeBusyboxRootfs(rootfs)
    const baseTar = join(work, 'busybox.tar')
    await run('tar', ['-C', rootfs, '--numeric-owner', '-cf', baseTar, '.'])
    const big = join(work, 'big')
    for (let i = 0; i < LAYER_FILES; i++) {
      const dir = join(big, `dir${i % 5}`)
      mkdirSync(dir, { recursive: true })
      writeFileSync(join(dir, `file${i}`), randomBytes(FILE_BYTES))
    }
    const bigTar = join(work, 'big.tar')
    await run('tar', ['-C', big, '--numeric-owner', '-cf', bigTar, '.'])

    log('opening devicemapper (dockerd defaults: xfs, 10 GB base) ...')
    dm = await openDevmapperGraph({ root: join(work, 'dm') })
    const drivers: Array<[string, GraphDriver]> = [
      ['devicemapper', dm],
      ['overlay2', await overlay2Factory.open({ root: join(work, 'overlay2') })],
      ['vfs', await vfsFactory.open({ root: join(work, 'vfs') })],
    ]
    for (const [name, driver] of drivers) {
      const base = newId()
      await driver.create(base, null)
      await driver.applyDiff(base, null, createReadStream(baseTar))
      lanes.push({ name, driver, base, made: [] })
    }

    const results: CaseResult[] = []
    const contenders = (fn: (lane: Lane) => Contender): [Contender, Contender[]] => {
      const [first, ...rest] = lanes.map(fn)
      return [first!, rest]
    }
    log('create + mount ...')
    results.push(
      await compare(
        'create + mount a read-write layer (in the VM)',
        ...contenders((lane) => ({
          name: `strata ${lane.name}`,
          prepare: () => tidy(lane),
          run: async () => {
            const id = newId()
            await lane.driver.createReadWrite(id, lane.base)
            lane.made.push({ id, mounted: false })
            await lane.driver.get(id)
            lane.made[lane.made.length - 1]!.mounted = true
          },
        })),
        CREATE_RUNS,
      ),
    )
    log('apply a 50 MB layer ...')
    let pending: string | undefined
    results.push(
      await compare(
        `apply a ${(LAYER_FILES * FILE_BYTES) / (1 << 20)} MiB layer (${LAYER_FILES} files, in the VM)`,
        ...contenders((lane) => ({
          name: `strata ${lane.name}`,
          prepare: async () => {
            await tidy(lane)
            pending = newId()
            await lane.driver.create(pending, lane.base)
            lane.made.push({ id: pending, mounted: false })
          },
          run: async () => {
            await lane.driver.applyDiff(pending!, lane.base, createReadStream(bigTar, { highWaterMark: 1 << 20 }))
          },
        })),
        APPLY_RUNS,
      ),
    )
    writeFileSync(out, JSON.stringify(results))
  } finally {
    for (const lane of lanes) {
      await tidy(lane).catch(() => {})
      await lane.driver.remove(lane.base).catch(() => {})
      await lane.driver.cleanup().catch(() => {})
    }
    await dm?.shutdown().catch(() => {})
    await rm(work, { recursive: true, force: true })
  }
}

/** On the host: boots the VM, runs guestMain there, returns its results. */
export async function devicemapperBench(work: string, log: Log): Promise<CaseResult[]> {
  const why = vmUnavailable()
  if (why !== undefined) throw new Error(`the devicemapper benchmark runs in the test VM, which ${why}`)
  const out = join(work, 'results.json')
  log('booting the VM (qemu, emulated) ...')
  const r = await runInVm(['node', join(REPO_ROOT, 'dist/bench/devicemapper.js'), out], {
    shares: [work],
    env: { STRATA_IN_VM: '1' },
    timeoutSec: 30 * 60,
    onOutput: (chunk) => process.stderr.write(chunk),
  })
  if (r.code !== 0) throw new Error(`the devicemapper benchmark failed in the VM (exit ${r.code}):\n${r.output.slice(-3000)}`)
  log(`VM run: ${r.seconds.toFixed(0)} s`)
  return JSON.parse(readFileSync(out, 'utf8')) as CaseResult[]
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = process.argv[2]
  if (out === undefined || process.env.STRATA_IN_VM !== '1') {
    process.stderr.write('usage: STRATA_IN_VM=1 node dist/bench/devicemapper.js OUT.json (in the test VM; npm run bench -- devicemapper boots it)\n')
    process.exit(2)
  }
  await guestMain(out)
}

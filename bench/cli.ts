/**
 * A command's cold start: `strata version`, `images`, `inspect` and `ps`
 * as users run them (the bin, a fresh process each time) on a data root
 * in tmpfs (/dev/shm) holding one small image and one container, next to
 * `node -e 0` (the floor any Node program pays) and the docker 20.10 CLI
 * asking a warm dockerd (its data root in tmpfs too) the same question.
 * CPU-bound, so the disk is kept out of it.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { startDockerd } from '../test/helpers/dockerd.js'
import { run } from '../test/helpers/peers.js'
import { benchContext } from './debian-image.js'
import { compare, sh, STRATA_CLI, type CaseResult, type Contender } from './harness.js'

const RUNS = 21

export async function cliBench(work: string, log: (m: string) => void): Promise<CaseResult[]> {
  const shm = mkdtempSync('/dev/shm/strata-bench-cli-')
  const cleanups: Array<() => Promise<void> | void> = [() => rmSync(shm, { recursive: true, force: true })]
  try {
    const root = join(shm, 'strata')
    const rootfs = join(work, 'rootfs')
    mkdirSync(join(rootfs, 'bin'), { recursive: true })
    await sh(`cp /bin/busybox ${rootfs}/bin/busybox && tar -C ${rootfs} -cf ${work}/busybox.tar .`)
    const strataArgs = (...args: string[]): string[] => [STRATA_CLI, '--root', root, '-s', 'overlay2', ...args]
    await run(process.execPath, strataArgs('import', '--change', 'CMD ["sh"]', `${work}/busybox.tar`, 'bench-cli:1'))
    await run(process.execPath, strataArgs('create', 'bench-cli:1'))

    log('starting dockerd (data root in tmpfs)')
    const dockerd = await startDockerd(benchContext(cleanups, log), { storageDriver: 'overlay2', dataRoot: join(shm, 'dockerd') })
    await dockerd.docker(['import', '--change', 'CMD ["sh"]', `${work}/busybox.tar`, 'bench-cli:1'])
    await dockerd.docker(['create', 'bench-cli:1'])

    const proc = (name: string, cmd: string, args: string[]): Contender => ({ name, run: async () => void (await run(cmd, args)) })
    const floor = proc('node -e 0 (Node start, nothing loaded)', process.execPath, ['-e', '0'])
    const docker = (...args: string[]): Contender => ({ name: `docker ${args.join(' ')} (docker 20.10 CLI, warm dockerd)`, run: async () => void (await dockerd.docker(args)) })
    const results: CaseResult[] = []
    for (const [verb, args] of [
      ['version', ['version']],
      ['images', ['images']],
      ['inspect', ['inspect', 'bench-cli:1']],
      ['ps', ['ps', '-a']],
    ] as const) {
      log(`strata ${verb}`)
      results.push(
        await compare(`strata ${args.join(' ')}: a fresh process, median of ${RUNS}`, proc(`strata ${verb}`, process.execPath, strataArgs(...args)), [floor, docker(...args)], RUNS),
      )
    }
    return results
  } finally {
    for (const c of cleanups.reverse()) await c()
  }
}

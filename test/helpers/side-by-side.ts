/**
 * The docker CLI and the strata CLI side by side, for tests that compare
 * their output: a scratch dir, a busybox rootfs tar in it, a private
 * dockerd 20.10 on overlay2 (stopped when the test ends) and a strata root
 * on `driver`, with one runner for each CLI.
 */
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { busyboxRootfsTar } from './api-server.js'
import { DOCKER, startDockerd } from './dockerd.js'
import { STRATA_CLI } from './strata-cli.js'
import { tempDirFor } from './tmp.js'

export interface Outcome {
  code: number
  stdout: string
  stderr: string
}

export interface SideBySide {
  dir: string
  /** The strata data root. */
  root: string
  /** A busybox rootfs as a tar, to import on both sides. */
  tar: string
  docker(args: string[]): Outcome
  strata(args: string[]): Outcome
}

export async function sideBySide(t: TestContext, prefix: string, driver: string): Promise<SideBySide> {
  const dir = tempDirFor(t, prefix)
  const root = join(dir, 'root')
  const tar = join(dir, 'bb.tar')
  writeFileSync(tar, await busyboxRootfsTar(t))
  const d = await startDockerd(t, { storageDriver: 'overlay2' })
  t.after(() => d.stop())
  const outcome = (r: ReturnType<typeof spawnSync>): Outcome => ({ code: r.status ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) })
  return {
    dir,
    root,
    tar,
    docker: (args) => outcome(spawnSync(DOCKER, args, { encoding: 'utf8', env: { ...process.env, DOCKER_HOST: d.host, DOCKER_CONFIG: join(dir, 'docker-config'), DOCKER_BUILDKIT: '0' } })),
    strata: (args) => outcome(spawnSync(process.execPath, [STRATA_CLI, '--root', root, '-s', driver, ...args], { encoding: 'utf8', env: { ...process.env, STRATA_ROOT: '', STRATA_DRIVER: '' } })),
  }
}

/**
 * A fresh data root for the layer store tests: a driver opened on it, a set
 * standing for the chainIDs images keep alive, and a teardown that runs the
 * test's own cleanups (newest first), releases the driver, detaches and
 * reports anything left mounted, and removes the root.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import type { TestContext } from 'node:test'
import { openDriver, type GraphDriver } from '../../src/graphdriver/index.js'
import { LayerStore, type ChainID } from '../../src/layer/index.js'
import { MNT_DETACH, umount2 } from '../../src/sys/index.js'
import { mountsAtOrUnder } from './dockerd.js'
import { requireRoot, requireTool } from './peers.js'

export interface LayerEnv {
  /** Runs `fn` when the test ends, before the data root is torn down (newest first). */
  defer: (fn: () => Promise<unknown> | unknown) => void
  root: string
  driver: GraphDriver
  /** The chainIDs the store's imageReferences reports. */
  images: Set<ChainID>
  /** Opens a LayerStore on the root (the driver above, `images` as image references). */
  open: () => Promise<LayerStore>
}

export interface LayerEnvOptions {
  /** Whether a failing deferred cleanup fails the test (default) or is ignored (cleanups of killed processes). */
  cleanupErrors?: 'throw' | 'ignore'
}

/** Root, busybox and GNU tar: what the layer store tests need. */
export function canRunLayerTests(t: TestContext): boolean {
  return requireRoot(t) && requireTool(t, 'tar', 'busybox')
}

export async function layerEnv(t: TestContext, driverName: string, opts: LayerEnvOptions = {}): Promise<LayerEnv> {
  const root = mkdtempSync(join(tmpdir(), `strata-test-layer-${driverName}-`))
  const drivers: GraphDriver[] = []
  const deferred: Array<() => Promise<unknown> | unknown> = []
  t.after(async () => {
    try {
      // The test's own cleanups first, newest first (t.after runs hooks oldest first).
      const errors: unknown[] = []
      for (const fn of deferred.reverse()) {
        try {
          await fn()
        } catch (err) {
          errors.push(err)
        }
      }
      for (const d of drivers) await d.cleanup()
      if (errors.length > 0 && opts.cleanupErrors !== 'ignore') throw errors[0]
    } finally {
      const left = mountsAtOrUnder([root])
      for (const m of left) umount2(m, MNT_DETACH)
      rmSync(root, { recursive: true, force: true })
      assert.deepEqual(left, [], `mounts left under ${root}`)
    }
  })
  const driver = await openDriver(root, driverName)
  drivers.push(driver)
  const images = new Set<ChainID>()
  return {
    defer: (fn) => deferred.push(fn),
    root,
    driver,
    images,
    open: () => LayerStore.open({ root, driver, imageReferences: async () => images }),
  }
}

/** A stream's bytes (the layers here are small). */
export async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

/** Another node process with a store open on the same root; `line()` resolves with its next line of output. */
export interface StoreProcess {
  child: ChildProcess
  line: () => Promise<string>
}

/** A node process running `body` (ESM, top-level await) with `store`, `driver`, `LayerStore` and `openDriver` in scope. */
export function spawnStoreProcess(root: string, driverName: string, body: string): StoreProcess {
  const layerUrl = new URL('../../src/layer/index.js', import.meta.url).href
  const driverUrl = new URL('../../src/graphdriver/index.js', import.meta.url).href
  const code = `
    import { LayerStore } from ${JSON.stringify(layerUrl)}
    import { openDriver } from ${JSON.stringify(driverUrl)}
    const driver = await openDriver(${JSON.stringify(root)}, ${JSON.stringify(driverName)})
    const store = await LayerStore.open({ root: ${JSON.stringify(root)}, driver })
    ${body}
  `
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['pipe', 'pipe', 'pipe'] })
  let buffered = ''
  let stderr = ''
  const waiters: Array<(l: string) => void> = []
  const lines: string[] = []
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()))
  child.stdout!.on('data', (c: Buffer) => {
    buffered += c.toString()
    let i: number
    while ((i = buffered.indexOf('\n')) >= 0) {
      const l = buffered.slice(0, i)
      buffered = buffered.slice(i + 1)
      const w = waiters.shift()
      if (w) w(l)
      else lines.push(l)
    }
  })
  const line = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const l = lines.shift()
      if (l !== undefined) return resolve(l)
      waiters.push(resolve)
      child.once('exit', (code, sig) => reject(new Error(`child exited (${code ?? sig}) before printing a line: ${stderr}`)))
    })
  return { child, line }
}

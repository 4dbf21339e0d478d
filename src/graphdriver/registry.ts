/**
 * Which graph driver runs on a data root: by name, or chosen the way
 * dockerd 20.10 chooses one when none is configured (graphdriver.New):
 *
 *  1. A driver with state from a prior run (its home `<root>/<name>` exists
 *     and is not empty) is used, so a data root keeps its images. vfs is
 *     left out of this scan, as dockerd leaves it out: a vfs home lingers
 *     after a one-off `-s vfs` run and must not pin the root to the slowest
 *     driver. Prior state of two drivers at once is an error (the caller
 *     must choose), and a prior driver that can no longer run here is an
 *     error too, not a silent switch that would make the images vanish.
 *  2. Otherwise the first driver in DRIVER_ORDER whose probe says it can
 *     run here, then any other registered driver.
 *
 * Drivers are registered by whoever imports them (src/graphdriver/index.ts
 * registers the built-in ones), so this module depends on none of them.
 */
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { StrataError, isErrno, isStrataError } from '../errors/index.js'
import type { DriverFactory, GraphDriver } from './types.js'

/** Automatic selection order (dockerd's priority list, as far as strata has the drivers). */
export const DRIVER_ORDER: readonly string[] = Object.freeze(['overlay2', 'btrfs', 'vfs'])

/** Drivers whose leftover home does not count as prior state (dockerd: "don't use vfs even if there is state present"). */
const NOT_PRIOR = new Set(['vfs'])

/** Drivers never chosen by probing, only by name or prior state (dockerd 20.10 does not pick deprecated drivers by itself). */
const NOT_AUTO = new Set(['devicemapper'])

/** True when `dir` is a directory with at least one entry. */
function hasContent(dir: string): boolean {
  try {
    if (!statSync(dir).isDirectory()) return false
    return readdirSync(dir).length > 0
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return false
    throw err
  }
}

/** A set of driver factories and the selection logic over them. Most callers use the module's default registry (registerDriver, openDriver). */
export class DriverRegistry {
  readonly #factories = new Map<string, DriverFactory>()

  /** Adds a driver kind. Registering the same factory again is a no-op; another one under a taken name is ALREADY_EXISTS. */
  register(factory: DriverFactory): void {
    const existing = this.#factories.get(factory.name)
    if (existing === factory) return
    if (existing !== undefined) throw new StrataError('ALREADY_EXISTS', `A storage driver named "${factory.name}" is already registered`, { details: { name: factory.name } })
    this.#factories.set(factory.name, factory)
  }

  /** Registered names: DRIVER_ORDER's first (those registered), then the others in registration order. */
  names(): string[] {
    const ordered = DRIVER_ORDER.filter((n) => this.#factories.has(n))
    for (const n of this.#factories.keys()) if (!ordered.includes(n)) ordered.push(n)
    return ordered
  }

  factory(name: string): DriverFactory | undefined {
    return this.#factories.get(name)
  }

  /** Names of registered drivers (vfs excepted) with a non-empty home under `root`, in selection order. */
  priorDrivers(root: string): string[] {
    return this.names().filter((n) => !NOT_PRIOR.has(n) && hasContent(join(root, n)))
  }

  /**
   * Opens the driver `name` on `root`, or, without a name, the one dockerd
   * would pick (see the module comment). `options` are the driver's own
   * (`--storage-opt`), passed to whichever driver is opened.
   */
  async open(root: string, name?: string, options?: Record<string, string>): Promise<GraphDriver> {
    if (name !== undefined) {
      const factory = this.#factories.get(name)
      if (factory === undefined) {
        const known = this.names()
        throw new StrataError('INVALID_ARGUMENT', `Unknown storage driver "${name}" (known: ${known.length === 0 ? 'none registered' : known.join(', ')})`, {
          details: { name, known },
        })
      }
      return this.#openProbed(factory, root, options)
    }

    const prior = this.priorDrivers(root)
    if (prior.length > 1) {
      throw new StrataError('INVALID_ARGUMENT', `"${root}" holds layers of several storage drivers (${prior.join(', ')}); choose one explicitly`, {
        hint: `remove the homes of the drivers you no longer use (${prior.map((n) => join(root, n)).join(', ')}) or pass a driver name`,
        details: { root, prior },
      })
    }
    if (prior.length === 1) {
      const factory = this.#factories.get(prior[0]!)!
      return this.#openProbed(factory, root, options, `its layers from a previous run are in "${join(root, factory.name)}"`)
    }

    const refused: string[] = []
    for (const n of this.names()) {
      if (NOT_AUTO.has(n)) continue
      const factory = this.#factories.get(n)!
      const probe = await factory.probe(root)
      if (!probe.ok) {
        refused.push(`${n}: ${probe.reason ?? 'not supported'}`)
        continue
      }
      try {
        return await factory.open({ root, options })
      } catch (err) {
        // A probe cannot foresee everything (a mount that fails only when tried): move on, like dockerd on ErrNotSupported.
        if (!isStrataError(err, 'NOT_SUPPORTED')) throw err
        refused.push(`${n}: ${err.message}`)
      }
    }
    throw new StrataError('NOT_SUPPORTED', `No storage driver can run on "${root}"${refused.length === 0 ? ' (none registered)' : `: ${refused.join('; ')}`}`, {
      details: { root, refused },
    })
  }

  async #openProbed(factory: DriverFactory, root: string, options: Record<string, string> | undefined, hint?: string): Promise<GraphDriver> {
    const probe = await factory.probe(root)
    if (!probe.ok) {
      throw new StrataError('NOT_SUPPORTED', `storage driver "${factory.name}" cannot run on ${root}: ${probe.reason ?? 'not supported'}`, {
        ...(hint === undefined ? {} : { hint }),
        details: { name: factory.name, root },
      })
    }
    return factory.open({ root, options })
  }
}

/** The registry src/graphdriver/index.ts fills with the built-in drivers. */
export const defaultRegistry = new DriverRegistry()

/** Registers a driver kind in the default registry. */
export function registerDriver(factory: DriverFactory): void {
  defaultRegistry.register(factory)
}

/**
 * Opens a graph driver on the data root `root` from the default registry:
 * `name` if given (NOT_SUPPORTED with the probe's reason if it cannot run
 * here, INVALID_ARGUMENT if unknown), else the prior run's driver or the
 * first in DRIVER_ORDER that can run.
 */
export function openDriver(root: string, name?: string, options?: Record<string, string>): Promise<GraphDriver> {
  return defaultRegistry.open(root, name, options)
}

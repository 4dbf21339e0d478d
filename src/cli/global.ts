/**
 * Options every verb shares (the CLI contract): `--root DIR` (env
 * STRATA_ROOT, default /var/lib/strata), `-s/--storage-driver NAME` (env
 * STRATA_DRIVER; default: the prior run's driver, else the first that works
 * of overlay2, btrfs, vfs), `--storage-opt k=v` (repeatable). They come
 * before the verb: `strata --root /tmp/r -s vfs info`.
 */
import { FlagError, UsageError } from './errors.js'

export interface GlobalOptions {
  root: string
  driver: string | undefined
  storageOpts: Record<string, string>
}

export const DEFAULT_ROOT = '/var/lib/strata'

export const GLOBAL_HELP = `Global options (before the command):
  --root DIR                Data root (env STRATA_ROOT; default ${DEFAULT_ROOT})
  -s, --storage-driver NAME overlay2, btrfs, vfs, devicemapper or aufs (env STRATA_DRIVER; default: the root's, else the first that works)
  --storage-opt KEY=VALUE   Driver option, repeatable (e.g. overlay2.mountapi=new)
`

/** Splits argv into the global options and the rest (verb and its arguments). */
export function parseGlobal(argv: string[], env: NodeJS.ProcessEnv): { global: GlobalOptions; rest: string[] } {
  const global: GlobalOptions = {
    root: env.STRATA_ROOT !== undefined && env.STRATA_ROOT !== '' ? env.STRATA_ROOT : DEFAULT_ROOT,
    driver: env.STRATA_DRIVER !== undefined && env.STRATA_DRIVER !== '' ? env.STRATA_DRIVER : undefined,
    storageOpts: {},
  }
  let i = 0
  const value = (flag: string, inline: string | undefined): string => {
    if (inline !== undefined) return inline
    const v = argv[++i]
    if (v === undefined) throw new FlagError(flag.startsWith('--') ? `flag needs an argument: ${flag}` : `flag needs an argument: '${flag.slice(1)}' in ${flag}`)
    return v
  }
  for (; i < argv.length; i++) {
    const arg = argv[i]!
    if (!arg.startsWith('-') || arg === '-') break
    const eq = arg.indexOf('=')
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg
    const inline = arg.startsWith('--') && eq > 0 ? arg.slice(eq + 1) : undefined
    if (flag === '--root') global.root = value(flag, inline)
    else if (flag === '-s' || flag === '--storage-driver') global.driver = value(flag, inline)
    else if (flag === '--storage-opt') {
      const kv = value(flag, inline)
      const at = kv.indexOf('=')
      if (at <= 0) throw new UsageError(`invalid argument "${kv}" for "--storage-opt" flag: takes KEY=VALUE`)
      global.storageOpts[kv.slice(0, at)] = kv.slice(at + 1)
    } else break // the verb's own flags (e.g. --help) start here
  }
  return { global, rest: argv.slice(i) }
}

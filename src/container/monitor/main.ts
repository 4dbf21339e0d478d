/**
 * The container monitor's entry point: `node main.js ROOT ID [RUNTIME [--attach-first] [--size=RxC]]`,
 * spawned detached (its own session, stdio to strata-monitor.log) by
 * startContainer, once per start; see types.ts for the contract. It
 * imports only what running one container needs (the record files, the
 * data-root lock, the log writer): the store is loaded at exit, to
 * unmount the layer.
 */
import { closeSync, writeSync } from 'node:fs'
import { monitorContainer, type MonitorHello } from './monitor.js'

const [root, id, runtime, ...flags] = process.argv.slice(2)
// --attach-first, --size=ROWSxCOLS: a terminal's first run (tty-run.ts).
const attachFirst = flags.includes('--attach-first')
const sized = flags.map((f) => /^--size=([0-9]+)x([0-9]+)$/.exec(f)).find((m) => m !== null)
const size = sized === undefined || sized === null ? undefined : { rows: Number(sized[1]), cols: Number(sized[2]) }

/** fd 3 is the pipe startContainer reads the hello from (absent when run by hand). */
function hello(msg: MonitorHello): void {
  try {
    writeSync(3, `${JSON.stringify(msg)}\n`)
    closeSync(3)
  } catch {
    // Nobody is listening (the starter died, or a run by hand): the record says it all.
  }
}

if (root === undefined || id === undefined) {
  process.stderr.write('usage: main.js ROOT CONTAINER-ID [RUNTIME]\n')
  process.exitCode = 2
} else {
  // The monitor outlives terminals and its starter; signals meant for a session are not for it.
  for (const sig of ['SIGINT', 'SIGHUP', 'SIGPIPE'] as const) process.on(sig, () => {})
  monitorContainer({ root, id, runtime: runtime ?? 'runc', hello, attachFirst, ...(size === undefined ? {} : { size }) }).then(
    () => {},
    (err: unknown) => {
      process.stderr.write(`${new Date().toISOString()} monitor of ${id} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
      hello({ ok: false, error: err instanceof Error ? err.message : String(err) })
      process.exitCode = 1
    },
  )
}

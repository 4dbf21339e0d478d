/** The monitor's dealings with runc that every kind of run shares: quiet calls, and a start failure in dockerd's words. */
import { spawn } from 'node:child_process'

export interface RunOutcome {
  started: boolean
  exitCode: number
  /** Why it did not start, or what went wrong with runc itself. */
  error: string
  startedAtMs: number
}

/** runc with every stream ignored; resolves with its exit code (-1: it could not run). */
export function runcQuiet(runtime: string, args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(runtime, args, { stdio: 'ignore' })
    child.on('error', () => resolve(-1))
    child.on('close', (code) => resolve(code ?? -1))
  })
}

/** dockerd's translateContainerdStartErr: the exit code a start failure leaves. */
function startFailureCode(message: string, cmd: string): number {
  const m = message.toLowerCase()
  if (m.includes(cmd.toLowerCase()) && (m.includes('executable file not found') || m.includes('no such file or directory'))) return 127
  if (m.includes('permission denied')) return 126
  return 128
}

/** What runc said when the container did not start (its stderr), as containerd words it, and the exit code dockerd records for it. */
export function startFailure(runcStderr: string, runcExit: number, cmd: string, runtime: string): { exitCode: number; error: string } {
  const said = runcStderr.trim().split('\n').at(-1) ?? ''
  // runc logs its error as logrus does (time="..." level=error msg="..."); the message, unquoted, in containerd's words.
  const logged = /msg="((?:[^"\\]|\\.)*)"/.exec(said)
  const reason = (logged === null ? said : logged[1]!.replace(/\\(.)/g, '$1')).replace(/^runc run failed: /, 'runc create failed: ')
  const error = `OCI runtime create failed: ${reason || `${runtime} exited with ${runcExit}`}: unknown`
  return { exitCode: startFailureCode(error, cmd), error }
}

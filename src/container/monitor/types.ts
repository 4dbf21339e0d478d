/**
 * The container monitor: how a container outlives the command that
 * started it, without a daemon (podman's conmon, in strata's terms).
 *
 * Words:
 * - The *monitor* is one small Node process per started container
 *   (`main.ts`, importing only the record files, the data-root lock and
 *   the log writer; the store only at exit). startContainer spawns it in
 *   its own session (setsid), stdio to `strata-monitor.log`, and reads one
 *   *hello* from it on fd 3: the container runs (its init PID), or why it
 *   could not start. Then the starter goes away; the monitor stays until
 *   the container is finished with.
 * - The monitor runs `runc run --bundle <containers/id/bundle> --pid-file
 *   <bundle/init.pid> <id>`: runc stays the container's parent, passes its
 *   stdio straight to the process, forwards signals and exits with the
 *   process's status (128 + n for a signal n). `runc kill <id> SIG` from
 *   any process signals the container meanwhile.
 * - *Alive*: `strata-monitor.json` names the monitor by PID, start time
 *   and boot ID (containerdb monitor-file.ts). A record that says Running
 *   is believed only while its monitor is alive; otherwise it is
 *   *reconciled* (process.ts reconcileContainer): what is left of the
 *   container killed, runc state, bundle and the monitor's mount released,
 *   State Exited (137 when something had to be killed, else 255).
 *
 * Rules:
 * - The monitor owns the container from its hello on: the mount the
 *   starter made (one mount-count), the bundle, the runc state and State.
 *   Before the hello the starter owns them and undoes them on failure.
 * - State is written as dockerd 20.10 writes it (container/state.go):
 *   SetRunning (Running, Pid, StartedAt; ExitCode 0, Error ""), restarts
 *   (Restarting, Running, Pid 0, ExitCode, FinishedAt; RestartCount + 1),
 *   SetStopped (Running false, Pid 0, ExitCode, FinishedAt) and a start
 *   failure (Error, ExitCode 127/126/128, StartedAt untouched: `Created`).
 * - Exit order, dockerd's: runc state deleted, bundle removed, the layer
 *   unmounted, THEN (holding the container's lock, the one start and
 *   reconciliation take) the monitor file removed and State stopped. So
 *   a waiter that sees the container stopped sees everything released,
 *   and a start that follows never races the old monitor.
 * - A container with a terminal (Config.Tty) runs through `runc create
 *   --console-socket` + `runc start` instead (tty-run.ts): the monitor
 *   receives the pty master, is the init's subreaper and reaper, logs the
 *   terminal's output as stdout and serves attaches on its attach socket
 *   (attach-protocol.ts) in `/run/strata/containers/<id>/` (paths.ts).
 * - Output goes to `<id>-json.log` in docker's json-file format
 *   (json-log.ts), appended line by line; the record's LogPath names it
 *   and hostconfig's LogConfig says json-file, so dockerd reads it too.
 * - Restart policies (restart.ts) are applied by the monitor between runs
 *   while it lives; a stop or kill by hand (HasBeenManuallyStopped) ends
 *   them; SIGUSR1 wakes a monitor waiting to restart so it sees that.
 * - Nothing below the monitor prints to a terminal or exits the caller:
 *   start/stop/kill/wait/logs are library calls (process.ts, logs.ts)
 *   with AbortSignals for their waits, for the CLI and the Engine API.
 */
export type { MonitorHello, MonitorOptions } from './monitor.js'
export type { RestartPolicy, RestartState } from './restart.js'
export type { LogStream } from './json-log.js'

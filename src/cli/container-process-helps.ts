/**
 * The help texts of the verbs on a container's process (start, stop, kill,
 * wait, logs, restart, pause, unpause, exec, top, attach, stats), apart from
 * their code (container-process.ts): container.ts lists every container
 * verb's help, and a `strata create` or `mount` should not initialise the
 * process verbs' modules to have them.
 */
export const PROCESS_HELPS: Record<string, string> = {
  start: `Usage: strata start [OPTIONS] CONTAINER [CONTAINER...]

Start one or more stopped containers (in the background: a monitor process per container runs it).

Options:
  -a, --attach        Attach STDOUT/STDERR and forward signals; exit with the container's status
  -i, --interactive   Attach container's STDIN
      --detach-keys string   Override the key sequence for detaching a container (default ctrl-p,ctrl-q)
`,
  stop: `Usage: strata stop [OPTIONS] CONTAINER [CONTAINER...]

Stop one or more running containers (the stop signal, then SIGKILL after the timeout).

Options:
  -t, --time int   Seconds to wait for stop before killing it (default 10)
`,
  kill: `Usage: strata kill [OPTIONS] CONTAINER [CONTAINER...]

Kill one or more running containers.

Options:
  -s, --signal string   Signal to send to the container (default "KILL")
`,
  wait: `Usage: strata wait CONTAINER [CONTAINER...]

Block until one or more containers stop, then print their exit codes.
`,
  logs: `Usage: strata logs [OPTIONS] CONTAINER

Fetch the logs of a container.

Options:
  -f, --follow         Follow log output
      --since string   Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)
  -n, --tail string    Number of lines to show from the end of the logs (default "all")
  -t, --timestamps     Show timestamps
      --until string   Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)
`,
  restart: `Usage: strata restart [OPTIONS] CONTAINER [CONTAINER...]

Restart one or more containers.

Options:
  -t, --time int   Seconds to wait for stop before killing the container (default 10)
`,
  pause: `Usage: strata pause CONTAINER [CONTAINER...]

Pause all processes within one or more containers (the cgroup freezer).
`,
  unpause: `Usage: strata unpause CONTAINER [CONTAINER...]

Unpause all processes within one or more containers.
`,
  exec: `Usage: strata exec [OPTIONS] CONTAINER COMMAND [ARG...]

Run a command in a running container.

Options:
  -d, --detach          Detached mode: run command in the background
  -e, --env list        Set environment variables
  -i, --interactive     Keep STDIN open even if not attached
  -t, --tty             Allocate a pseudo-TTY
  -u, --user string     Username or UID (format: <name|uid>[:<group|gid>])
  -w, --workdir string  Working directory inside the container
`,
  attach: `Usage: strata attach [OPTIONS] CONTAINER

Attach local standard input, output, and error streams to a running container
(with a terminal: Ctrl-P Ctrl-Q detaches and leaves it running).

Options:
      --detach-keys string   Override the key sequence for detaching a container (default ctrl-p,ctrl-q)
      --no-stdin             Do not attach STDIN
      --sig-proxy            Proxy all received signals to the process (default true)
`,
  stats: `Usage: strata stats [OPTIONS] [CONTAINER...]

Display a live stream of container(s) resource usage statistics (read from their
cgroups once a second; Ctrl-C ends it).

Options:
  -a, --all             Show all containers (default shows just running)
      --format string   Pretty-print stats using a Go template
      --no-stream       Disable streaming stats and only pull the first result
      --no-trunc        Do not truncate output
`,
  top: `Usage: strata top CONTAINER [ps OPTIONS]

Display the running processes of a container.
`,
}

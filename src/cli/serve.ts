/**
 * `strata serve [-H unix:///run/strata.sock]... [--group G]`: the Docker
 * Engine API (v1.41) on the store, until SIGINT or SIGTERM, so that the
 * docker CLI, docker-py and dockerode work against it:
 *
 *   strata --root /var/lib/strata serve -H unix:///run/strata.sock &
 *   DOCKER_HOST=unix:///run/strata.sock docker images
 *
 * The server is the library behind an HTTP front (src/api); CLI processes
 * may use the same data root at the same time.
 */
import { API_VERSION, DEFAULT_HOST, startApiServer } from '../api/index.js'
import { Store } from '../store/index.js'
import { checkArgCount, parseFlags } from './args.js'
import type { GlobalOptions } from './global.js'
import type { CommandResult } from './output.js'
import type { VerbIO } from './progress.js'
import { interrupted } from './signals.js'

export const SERVE_HELP = `Usage: strata serve [OPTIONS]

Serve the Docker Engine API (v${API_VERSION}) on the store until interrupted, so
that docker, docker-py, dockerode and other Engine API clients can use it:
DOCKER_HOST=unix:///run/strata.sock docker images

Options:
  -H, --host ADDR         Listen on ADDR, repeatable: unix:///PATH (default
                          ${DEFAULT_HOST}) or tcp://127.0.0.1:PORT (loopback
                          only: strata has no TLS)
  -G, --group GROUP       Group owning the unix socket (mode 0660; default
                          "docker" when it exists, else root)
      --no-ui             Do not serve the layer explorer under /ui/
  -h, --help              Show this help

What strata does not have (build, volumes, swarm, plugins, networks other
than none and host) answers 501 Not Implemented.
`

export async function serveCommand(args: string[], global: GlobalOptions, io: VerbIO): Promise<CommandResult> {
  const { values, positionals } = parseFlags(
    args,
    { host: { type: 'string', short: 'H', multiple: true }, group: { type: 'string', short: 'G' }, 'no-ui': { type: 'boolean' } },
    SERVE_HELP,
  )
  checkArgCount(positionals, { max: 0 }, SERVE_HELP)
  const store = await Store.open({ root: global.root, ...(global.driver === undefined ? {} : { driver: global.driver }), driverOptions: global.storageOpts })
  try {
    const server = await startApiServer({
      store,
      hosts: values.host ?? [DEFAULT_HOST],
      ...(values.group === undefined ? {} : { socketGroup: values.group }),
      ui: values['no-ui'] !== true,
      log: (line) => process.stderr.write(`strata serve: ${line}\n`),
    })
    const stopped = interrupted()
    try {
      io.stdout.write(`strata serve: Engine API ${API_VERSION} on ${server.hosts.join(', ')} (data root ${store.root}, ${store.driver.name})\n`)
      await stopped
    } finally {
      await server.close()
    }
  } finally {
    await store.close()
  }
  return ''
}

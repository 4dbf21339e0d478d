/**
 * The Engine API server's contract: strata speaking Docker's Engine API
 * v1.41 (what dockerd 20.10 speaks) so that the docker CLI, docker-py and
 * dockerode work against a strata data root unchanged. The OpenAPI
 * document of v1.41 (moby's docs/api/v1.41.yaml) is the spec for shapes
 * and status codes; dockerd 20.10 run here is the reference where the
 * document is vague.
 *
 * Words:
 * - *API version*: "1.41"; a request names one with a `/v1.NN/` path
 *   prefix, or none (then the server's own, 1.41). Below MIN_API_VERSION or
 *   above API_VERSION is a 400 naming both, as dockerd answers.
 * - *Route*: a method and a path template (`/images/{name*}/json`: `{x}`
 *   is one path segment, `{x*}` one or more, because image names hold
 *   slashes) bound to a handler. Routes are tried in table order, as
 *   gorilla/mux does in dockerd, so `/images/json` wins over
 *   `/images/{name*}/json`.
 * - *Handler*: parses the request, calls the library, formats the result.
 *   Nothing else: every verb it serves is a library call the CLI makes too
 *   (src/store, src/transport and its registry, src/container), on the
 *   same Store, under the same locks, beside CLI processes on the same
 *   data root.
 * - *Streaming response*: a response whose status and headers are sent
 *   before the work is done (pull, push, load, events, logs, wait). From
 *   then on a failure can only be reported inside the stream, in the
 *   stream's own format (an `errorDetail` JSON message for progress
 *   streams), never as an HTTP status.
 * - *Hijacked connection*: attach and exec start take over the TCP/unix
 *   connection (`Upgrade: tcp` answered by `101 UPGRADED`, or a 200 with
 *   `application/vnd.docker.raw-stream` when the client did not ask); the
 *   connection then carries the process's stdio, multiplexed with
 *   docker's stdcopy framing when the container has no tty.
 *
 * Rules:
 * - Every response to a versioned route carries `Api-Version`,
 *   `Docker-Experimental`, `Ostype` and `Server`, as dockerd's middleware
 *   adds them (errors too).
 * - Errors are `{"message": "..."}` with the status StrataError's code maps
 *   to (errors.ts): NOT_FOUND 404, ALREADY_EXISTS and IN_USE 409,
 *   INVALID_ARGUMENT and UNSAFE_PATH 400, NOT_SUPPORTED 501, anything else
 *   500. A path no route knows is 404 `page not found`; a feature strata
 *   does not have (build, volumes, swarm, plugins, networks other than
 *   `none` and `host`) is 501 saying so: never a hang.
 * - The server never waits on a client without a bound: request headers
 *   must arrive within `headersTimeoutMs` (slowloris), a JSON body within
 *   `bodyTimeoutMs` and `maxJsonBodyBytes`; an uploaded tar (load, import,
 *   archive PUT) may be as large as it likes but must not stall for longer
 *   than `bodyTimeoutMs` between bytes.
 * - Unknown query parameters are ignored (the spec's open model: newer
 *   clients send parameters older servers do not know); a known parameter
 *   with a malformed value is a 400 naming it.
 * - A client that goes away mid-operation changes nothing the operation
 *   would not: an upload cut short (load, import) fails and keeps nothing,
 *   as a bad archive does; a pull or push whose client left runs to its
 *   end, all or nothing, as the library makes every pull (its progress
 *   goes nowhere).
 * - Listening: a unix socket (mode 0660, group `docker` when it exists or
 *   the one asked for, else root's), and TCP only when asked, and then only
 *   on a loopback address, because strata has no TLS: anyone who can reach
 *   the API is root on the machine (dockerd refuses the same without
 *   `--tls`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Readable, Writable } from 'node:stream'
import type { ImageView, Store } from '../store/index.js'
import type { EventJournal } from '../events/index.js'

/** The highest API version served, and the default for unversioned paths (dockerd 20.10's). */
export const API_VERSION = '1.41'
/** The lowest API version served (dockerd 20.10's MinVersion). */
export const MIN_API_VERSION = '1.12'

/** A place to listen: `unix:///run/strata.sock` or `tcp://127.0.0.1:2375`. */
export type ListenAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number }

export interface ApiServerOptions {
  store: Store
  /** `-H` values: `unix:///path`, `tcp://HOST:PORT`; default unix:///run/strata.sock. */
  hosts?: string[]
  /** Group that owns the unix sockets (name or numeric gid); default `docker` when that group exists, else root's. */
  socketGroup?: string
  /** How long a client may take to send its request headers (default 10 s). */
  headersTimeoutMs?: number
  /** How long a request body may stall (default 60 s). */
  bodyTimeoutMs?: number
  /** The largest JSON body accepted (default 4 MiB). */
  maxJsonBodyBytes?: number
  /** Serve the layer explorer's page and API under `/ui/` (default true). */
  ui?: boolean
  /** Where the explorer's built page lives (default dist/web). */
  uiAssetsDir?: string
  /** Receives one line per failed request worth a server-side note (a 500, a stream cut short). Default: nothing. */
  log?: (line: string) => void
}

/** What a handler gets. */
export interface RequestContext {
  req: IncomingMessage
  /** The response; on a connection that asked for `Upgrade: tcp` it writes to that connection until hijack() takes it over. */
  res: ServerResponse
  /** Path parameters, URL-decoded. */
  params: Record<string, string>
  query: URLSearchParams
  /** The API version of this request ("1.41" unless the path named another). */
  version: string
  store: Store
  /** The store's images as the server last read them, read again when the data root's image files change (src/store/image-view.ts). */
  imageView: ImageView
  /** The data root's events journal (handlers append what they did). */
  events: EventJournal
  /** The server's limits (body size, stall time). */
  limits: ApiLimits
  /**
   * The request body: the request itself, or, on an upgraded connection,
   * the connection from the first body byte on (read it with
   * request.ts's helpers, which stop at Content-Length).
   */
  body: Readable
  /**
   * Takes over the connection for a raw stream (attach, exec start): sends
   * `101 UPGRADED` (`Upgrade: tcp` asked) or `200 OK` with
   * `application/vnd.docker.raw-stream` and no framing, then hands back
   * what the client sends (`input`, after its request body) and where the
   * stream goes (`output`). Only routes marked `hijack` may call it.
   */
  hijack(): Hijacked
  log: (line: string) => void
}

export interface Hijacked {
  /** What the client sends after the request (a process's stdin). */
  input: Readable
  /** The raw stream to the client; end() closes the connection. */
  output: Writable
}

export interface ApiLimits {
  headersTimeoutMs: number
  bodyTimeoutMs: number
  maxJsonBodyBytes: number
}

export type Handler = (ctx: RequestContext) => Promise<void>

export interface Route {
  method: string
  /** A template: `/containers/{id}/json`, `/images/{name*}/push`. */
  path: string
  handler: Handler
  /** The route may hijack its connection (attach, exec start). */
  hijack?: boolean
}

/**
 * `strata version` and `strata --version`: docker's version report, shaped
 * as `docker version` (Client, and a Server section with one component per
 * part), for what strata is: a client with no daemon, whose "server" is
 * the storage it opens directly. --format runs a Go template over the same
 * fields (`{{.Client.Version}}`, `{{json .}}`), as docker runs it.
 */
import { existsSync, readFileSync } from 'node:fs'
import { arch, release } from 'node:os'
import { checkArgCount, parseFlags } from './args.js'
import { mapOf, pointerTo, sliceOf, STRING, structOf, tabwrite } from '../format/index.js'
import type { GlobalOptions } from './global.js'
import type { CommandOutput, CommandResult } from './output.js'
import { withStore } from './store.js'
import { runSingleTemplate, VERSION_TABWRITER } from './template-verb.js'

export const VERSION_HELP = `Usage: strata version [OPTIONS]

Show the strata version, and the data root and storage driver it uses.

Options:
  -f, --format FORMAT   A Go template as docker's ('{{.Client.Version}}', '{{json .}}')
`

/** The Engine API version whose JSON shapes strata's output follows (dockerd 20.10's). */
export const API_VERSION = '1.41'

/** strata's own version, from its package.json. */
export function strataVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
  return pkg.version
}

/** Go's GOARCH names for Node's. */
function goArch(): string {
  return ({ x64: 'amd64', ia32: '386', arm: 'arm', arm64: 'arm64', ppc64: 'ppc64le', s390x: 's390x' } as Record<string, string>)[arch()] ?? arch()
}

const PLATFORM = structOf([{ name: 'Name', type: STRING }])
const CLIENT_VERSION = structOf(
  [
    { name: 'Platform', type: PLATFORM },
    { name: 'Version', type: STRING },
    { name: 'APIVersion', type: STRING, json: 'ApiVersion' },
    { name: 'NodeVersion', type: STRING },
    { name: 'Os', type: STRING },
    { name: 'Arch', type: STRING },
  ],
  'system.clientVersion',
)
const COMPONENT = structOf(
  [
    { name: 'Name', type: STRING },
    { name: 'Version', type: STRING },
    { name: 'Details', type: mapOf(STRING, STRING), omitempty: true },
  ],
  'types.ComponentVersion',
)
const SERVER_VERSION = structOf(
  [
    { name: 'Platform', type: PLATFORM },
    { name: 'Components', type: sliceOf(COMPONENT) },
    { name: 'Version', type: STRING },
    { name: 'APIVersion', type: STRING, json: 'ApiVersion' },
    { name: 'Os', type: STRING },
    { name: 'Arch', type: STRING },
    { name: 'KernelVersion', type: STRING, omitempty: true },
  ],
  'types.Version',
)
const VERSION_INFO = structOf(
  [
    { name: 'Client', type: CLIENT_VERSION },
    { name: 'Server', type: pointerTo(SERVER_VERSION) },
  ],
  'system.versionInfo',
)

/** docker's default version template (defaultVersionReport writes the same without running it), with the client's Node.js version where docker has Go's. */
export const DEFAULT_VERSION_TEMPLATE = `{{with .Client -}}
Client:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
 Version:\t{{.Version}}
 API version:\t{{.APIVersion}}
 Node.js version:\t{{.NodeVersion}}
 OS/Arch:\t{{.Os}}/{{.Arch}}
{{- end}}

{{- with .Server}}

Server:{{if ne .Platform.Name ""}} {{.Platform.Name}}{{end}}
 {{- range $component := .Components}}
 {{$component.Name}}:
  Version:\t{{$component.Version}}
  {{- range $key, $value := $component.Details}}
  {{$key}}:\t{{$value}}
  {{- end}}
 {{- end}}
{{- end}}`

/** The fields `strata version` reports (its template's data). */
export interface VersionReport {
  Client: { Platform: { Name: string }; Version: string; ApiVersion: string; NodeVersion: string; Os: string; Arch: string }
  Server: null | {
    Platform: { Name: string }
    Components: Array<{ Name: string; Version: string; Details?: Record<string, string> }>
    Version: string
    ApiVersion: string
    Os: string
    Arch: string
    KernelVersion: string
  }
}

/** `strata version --format FORMAT` (and the default template: what defaultVersionReport must equal). */
export function versionTemplate(format: string, report: unknown): CommandOutput {
  return runSingleTemplate(format, report, { name: 'version', type: VERSION_INFO, tabwriter: true })
}

/**
 * What DEFAULT_VERSION_TEMPLATE writes for `report`, written directly:
 * lexing, parsing and running the template is most of a cold `strata
 * version`'s own work (node --cpu-prof: ~8 ms of CPU, the template engine's
 * code runs once, in the interpreter). test/cli-version.test.ts holds the
 * two equal.
 */
export function defaultVersionReport(report: VersionReport): string {
  const c = report.Client
  let out = `Client:${c.Platform.Name === '' ? '' : ` ${c.Platform.Name}`}\n Version:\t${c.Version}\n API version:\t${c.ApiVersion}\n Node.js version:\t${c.NodeVersion}\n OS/Arch:\t${c.Os}/${c.Arch}`
  const s = report.Server
  if (s !== null) {
    out += `\n\nServer:${s.Platform.Name === '' ? '' : ` ${s.Platform.Name}`}`
    for (const component of s.Components) {
      out += `\n ${component.Name}:\n  Version:\t${component.Version}`
      // Go ranges over a map in key order.
      const details = component.Details ?? {}
      for (const key of Object.keys(details).sort()) out += `\n  ${key}:\t${details[key]}`
    }
  }
  return tabwrite(`${out}\n`, VERSION_TABWRITER)
}

/** `strata --version`: docker's one line ("Docker version 20.10.24, build 297e128"). */
export function versionLine(): string {
  return `strata version ${strataVersion()}\n`
}

export async function versionCommand(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const { values, positionals } = parseFlags(args, { format: { type: 'string', short: 'f' } }, VERSION_HELP)
  checkArgCount(positionals, { max: 0 }, VERSION_HELP)
  const version = strataVersion()
  const client = { Platform: { Name: 'strata' }, Version: version, ApiVersion: API_VERSION, NodeVersion: process.version, Os: process.platform, Arch: goArch() }
  // Like docker without its daemon, the report has no Server part when the storage cannot be opened.
  let server: unknown = null
  let serverError = ''
  if (existsSync(global.root)) {
    try {
      const driver = await withStore(global, async (store) => store.driver.name, { reading: true })
      server = {
        Platform: { Name: 'strata (no daemon)' },
        Components: [{ Name: 'Storage', Version: version, Details: { DataRoot: global.root, StorageDriver: driver, Format: 'dockerd 20.10' } }],
        Version: version,
        ApiVersion: API_VERSION,
        Os: process.platform,
        Arch: goArch(),
        KernelVersion: release(),
      }
    } catch (err) {
      serverError = `${(err as Error).message}\n`
    }
  } else serverError = `data root ${global.root} does not exist\n`
  const out = values.format === undefined ? { stdout: defaultVersionReport({ Client: client, Server: server as VersionReport['Server'] }), stderr: '', exitCode: 0 } : versionTemplate(values.format, { Client: client, Server: server })
  if (serverError === '') return out
  return { stdout: out.stdout, stderr: `${out.stderr ?? ''}${serverError}`, exitCode: out.exitCode === 0 ? 1 : out.exitCode }
}

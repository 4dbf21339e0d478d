/**
 * The docker CLI's list formatters, as the Go types their templates run
 * over: one row context per verb (docker's formatter.imageContext,
 * image.historyContext, formatter.ContainerContext, container.statsContext
 * and the disk usage contexts), its column titles for `table` formats, and the default
 * formats docker falls back to. A verb builds the rows' column values and
 * hands them to src/format's formatDockerList, which runs `--format`
 * exactly as docker does (table header, tabwriter, json, errors).
 */
import { dockerRowType, formatDockerList, pointerTo, STRING, structOf, TemplateError, Typed, type DockerListFormat, type GoType } from '../format/index.js'
import type { CommandResult } from './output.js'

const columns = (...names: string[]): Record<string, GoType> => Object.fromEntries(names.map((n) => [n, STRING]))

/** docker's DefaultQuietFormat. */
export const QUIET_FORMAT = '{{.ID}}'

// --- images (cli/command/formatter/image.go) ---

export const IMAGE_ROW = dockerRowType('formatter.imageContext', columns('ID', 'Repository', 'Tag', 'Digest', 'CreatedSince', 'CreatedAt', 'Size', 'Containers', 'VirtualSize', 'SharedSize', 'UniqueSize'))

export const IMAGE_HEADER = {
  ID: 'IMAGE ID',
  Repository: 'REPOSITORY',
  Tag: 'TAG',
  Digest: 'DIGEST',
  CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT',
  Size: 'SIZE',
  Containers: 'CONTAINERS',
  VirtualSize: 'SIZE',
  SharedSize: 'SHARED SIZE',
  UniqueSize: 'UNIQUE SIZE',
}

/** NewImageFormat: the format `docker images` runs for a --format value ("table" when none). */
export function imageFormat(source: string, quiet: boolean, digest: boolean): string {
  if (source === 'table') {
    if (quiet) return QUIET_FORMAT
    return digest
      ? 'table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}'
      : 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}'
  }
  if (source === 'raw') {
    if (quiet) return 'image_id: {{.ID}}'
    return `repository: {{ .Repository }}\ntag: {{.Tag}}\n${digest ? 'digest: {{.Digest}}\n' : ''}image_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n`
  }
  if (source.startsWith('table') && digest && !source.includes('{{.Digest}}')) return `${source}\t{{.Digest}}`
  return source
}

// --- history (cli/command/image/formatter_history.go) ---

export const HISTORY_ROW = dockerRowType('image.historyContext', columns('ID', 'CreatedSince', 'CreatedAt', 'CreatedBy', 'Size', 'Comment'))

export const HISTORY_HEADER = {
  ID: 'IMAGE',
  CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT',
  CreatedBy: 'CREATED BY',
  Size: 'SIZE',
  Comment: 'COMMENT',
}

/** NewHistoryFormat. */
export function historyFormat(source: string, quiet: boolean, human: boolean): string {
  if (source !== 'table') return source
  if (quiet) return QUIET_FORMAT
  return human ? 'table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}' : 'table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}'
}

// --- ps (cli/command/formatter/container.go) ---

/** The payload of a ps row: its columns, and the labels `.Label "key"` reads. */
export interface ContainerRowPayload extends Record<string, unknown> {
  labels: Record<string, string>
}

export const CONTAINER_ROW = dockerRowType(
  'formatter.ContainerContext',
  {
    ...columns('ID', 'Names', 'Image', 'Command', 'CreatedAt', 'RunningFor', 'Ports', 'State', 'Status', 'Size', 'Labels', 'Mounts', 'LocalVolumes', 'Networks'),
    Platform: pointerTo(structOf([], 'formatter.Platform')),
  },
  {
    Label: { params: [STRING], result: STRING, call: (recv, name) => (recv as ContainerRowPayload | undefined)?.labels?.[name as string] ?? '' },
  },
)

export const CONTAINER_HEADER = {
  ID: 'CONTAINER ID',
  Names: 'NAMES',
  Image: 'IMAGE',
  Command: 'COMMAND',
  CreatedAt: 'CREATED AT',
  RunningFor: 'CREATED',
  Ports: 'PORTS',
  State: 'STATE',
  Status: 'STATUS',
  Size: 'SIZE',
  Labels: 'LABELS',
  Mounts: 'MOUNTS',
  LocalVolumes: 'LOCAL VOLUMES',
  Networks: 'NETWORKS',
  Platform: 'PLATFORM',
}

/** NewContainerFormat. */
export function containerFormat(source: string, quiet: boolean, size: boolean): string {
  if (source === 'table' || source === '') {
    if (quiet) return QUIET_FORMAT
    return `table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}${size ? '\\t{{.Size}}' : ''}`
  }
  if (source === 'raw') {
    if (quiet) return 'container_id: {{.ID}}'
    return `container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\ncreated_at: {{.CreatedAt}}\nstate: {{- pad .State 1 0}}\nstatus: {{- pad .Status 1 0}}\nnames: {{.Names}}\nlabels: {{- pad .Labels 1 0}}\nports: {{- pad .Ports 1 0}}\n${size ? 'size: {{.Size}}\\n' : ''}`
  }
  return quiet ? QUIET_FORMAT : source
}

// --- stats (cli/command/container/formatter_stats.go) ---

export const STATS_ROW = dockerRowType('container.statsContext', columns('Container', 'Name', 'ID', 'CPUPerc', 'MemUsage', 'MemPerc', 'NetIO', 'BlockIO', 'PIDs'))

export const STATS_HEADER = {
  Container: 'CONTAINER',
  Name: 'NAME',
  ID: 'CONTAINER ID',
  CPUPerc: 'CPU %',
  MemUsage: 'MEM USAGE / LIMIT',
  MemPerc: 'MEM %',
  NetIO: 'NET I/O',
  BlockIO: 'BLOCK I/O',
  PIDs: 'PIDS',
}

/** NewStatsFormat (Linux). */
export function statsFormat(source: string): string {
  return source === 'table' ? 'table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}' : source
}

// --- system df (cli/command/formatter/disk_usage.go) ---

const DF_COLUMNS = columns('Type', 'TotalCount', 'Active', 'Size', 'Reclaimable')

/** Each summary row has its own context type in docker (the type errors name). */
export const DF_ROWS = {
  images: dockerRowType('formatter.diskUsageImagesContext', DF_COLUMNS),
  containers: dockerRowType('formatter.diskUsageContainersContext', DF_COLUMNS),
  volumes: dockerRowType('formatter.diskUsageVolumesContext', DF_COLUMNS),
  buildCache: dockerRowType('formatter.diskUsageBuilderContext', DF_COLUMNS),
}

export const DF_HEADER = { Type: 'TYPE', TotalCount: 'TOTAL', Active: 'ACTIVE', Size: 'SIZE', Reclaimable: 'RECLAIMABLE' }

export const DF_FORMAT = 'table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}'

/** A row whose own type travels with it (for lists whose rows differ in type, as df's). */
export function typedRow(type: GoType, payload: unknown): Typed {
  return new Typed(type, payload)
}

/**
 * A list verb's output for a --format: the rows as docker prints them, or
 * docker's template error on stderr (exit 1) with nothing on stdout.
 */
export function renderList(format: string, rows: unknown[], options: DockerListFormat): CommandResult {
  try {
    return formatDockerList(format, rows, options)
  } catch (err) {
    if (err instanceof TemplateError) return { stdout: '', stderr: `${err.message}\n`, exitCode: 1 }
    throw err
  }
}

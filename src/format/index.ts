/**
 * Go's text/template and fmt over JSON-like data, and docker's use of them
 * for `--format`: the template language, Go's printing of values, docker's
 * template functions, its table directive and tabwriter layout. See
 * types.ts for the model.
 */
export type { ExecuteOptions, FuncMap, GoKind, GoMethod, GoType, MissingKey, StructField, TemplateFunc } from './types.js'
export { Template, type ParseTemplateOptions, type TemplateExecuteOptions } from './template.js'
export { TemplateError } from './errors.js'
export { Typed, NO_VALUE, valueOf, type Value } from './value.js'
export {
  ANY,
  ANY_USE_NUMBER,
  BOOL,
  COMPLEX128,
  FLOAT32,
  FLOAT64,
  INT,
  INT8,
  INT16,
  INT32,
  INT64,
  JSON_NUMBER,
  REFLECT_VALUE,
  STRING,
  UINT,
  UINT8,
  UINT16,
  UINT32,
  UINT64,
  assignableTo,
  mapOf,
  namedType,
  pointerTo,
  sliceOf,
  structOf,
  typeString,
} from './go-types.js'
export { TIME, timeString } from './go-time.js'
export { sprint, sprintf, sprintln } from './fmt.js'
export { encodeJSON, jsonString } from './json.js'
export { formatFloat, quote } from './strconv.js'
export { DOCKER_FUNCS, DOCKER_HEADER_FUNCS } from './docker-funcs.js'
export { tabwrite, DOCKER_TABWRITER, type TabwriterOptions } from './tabwriter.js'
export { dockerRowType, dockerFinalFormat, formatDockerList, isTableFormat, parseDockerTemplate, SUB_HEADER_CONTEXT, type DockerListFormat } from './docker-table.js'
export { displayWidth } from './tabwriter.js'
export { inspectWithTemplate, type InspectElement, type InspectResult } from './docker-inspect.js'
export { CONTAINER_CONFIG, CONTAINER_INSPECT, CONTAINER_STATE, DURATION, durationString, GRAPH_DRIVER_DATA, HEALTH_CONFIG, IMAGE_INSPECT, IMAGE_METADATA, PORT, PORT_SET, ROOT_FS, STR_SLICE } from './docker-types.js'

/**
 * The one `--change` engine, for `docker import --change` and `docker
 * commit --change` alike: Dockerfile instructions applied to a container
 * config (moby builder/dockerfile BuildFromConfig). dockerd 20.10 takes
 * CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR and
 * HEALTHCHECK there (its validCommitCommands; STOPSIGNAL, like every other
 * instruction, is "not a valid change command"); strata takes all of them
 * but HEALTHCHECK (NOT_SUPPORTED). Their meaning is the Dockerfile's, and
 * test/image-changes.test.ts checks it against dockerd's results:
 *
 *   CMD ["a","b"] | CMD a b           exec form, or shell form ["/bin/sh","-c","a b"]
 *   ENTRYPOINT (same forms)           also drops a CMD not set by an earlier change
 *   ENV k=v k2="v 2" | ENV k v w      replaces k in Env, keeps the order
 *   LABEL k=v ... | LABEL k v
 *   WORKDIR dir                       relative to the previous WORKDIR
 *   USER u[:g]   EXPOSE 80 53/udp 8000-8002   VOLUME ["/a"] | VOLUME /a /b
 *   ONBUILD INSTRUCTION ...           the trigger's text appended to OnBuild
 *
 * Words are processed as a Dockerfile's are: quotes removed, backslash
 * escapes, and $VAR, ${VAR}, ${VAR:-default}, ${VAR:+alt} expanded from
 * the Env set so far (not in CMD/ENTRYPOINT, which the shell expands at run
 * time). Anything else is INVALID_ARGUMENT, with docker's wording.
 */
import { posix } from 'node:path'
import { StrataError } from '../errors/index.js'
import type { ContainerConfig } from './config.js'

/** The instructions `changes` may hold (dockerd's validCommitCommands but HEALTHCHECK). */
export const CHANGE_COMMANDS = ['CMD', 'ENTRYPOINT', 'ENV', 'WORKDIR', 'USER', 'LABEL', 'EXPOSE', 'VOLUME', 'ONBUILD'] as const

/** What dockerd takes as a change and strata does not implement yet. */
const UNSUPPORTED_COMMANDS = ['HEALTHCHECK']

/** Instructions an ONBUILD trigger may not be (moby's parseOnBuild). */
const FORBIDDEN_TRIGGERS = ['FROM', 'MAINTAINER']

function invalid(why: string): StrataError {
  return new StrataError('INVALID_ARGUMENT', why)
}

/** Splits raw text into words at unquoted whitespace, keeping quotes and escapes for processWord. */
function splitWords(text: string): string[] {
  const words: string[] = []
  let cur = ''
  let quote: '"' | "'" | undefined
  let inWord = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quote === undefined && /\s/.test(c)) {
      if (inWord) words.push(cur)
      cur = ''
      inWord = false
      continue
    }
    inWord = true
    cur += c
    if (c === '\\' && quote !== "'" && i + 1 < text.length) {
      cur += text[++i]
      continue
    }
    if (quote === undefined && (c === '"' || c === "'")) quote = c
    else if (c === quote) quote = undefined
  }
  if (quote !== undefined) throw invalid(`unexpected end of statement while looking for matching ${quote}`)
  if (inWord) words.push(cur)
  return words
}

function lookupEnv(env: readonly string[], name: string): string | undefined {
  for (let i = env.length - 1; i >= 0; i--) {
    const e = env[i]!
    const eq = e.indexOf('=')
    if ((eq < 0 ? e : e.slice(0, eq)) === name) return eq < 0 ? '' : e.slice(eq + 1)
  }
  return undefined
}

/** Quote removal, escapes and variable expansion of one word (the Dockerfile's ProcessWord). */
function processWord(word: string, env: readonly string[]): string {
  let out = ''
  let quote: '"' | "'" | undefined
  for (let i = 0; i < word.length; i++) {
    const c = word[i]!
    if (quote === "'") {
      if (c === "'") quote = undefined
      else out += c
      continue
    }
    if (c === '\\' && i + 1 < word.length) {
      const next = word[i + 1]!
      // Inside double quotes only \\, \" and \$ are escapes; a backslash before anything else stays.
      if (quote === '"' && next !== '\\' && next !== '"' && next !== '$') {
        out += c
        continue
      }
      out += next
      i++
      continue
    }
    if (c === '"' && quote === undefined) {
      quote = '"'
      continue
    }
    if (c === '"' && quote === '"') {
      quote = undefined
      continue
    }
    if (c === "'" && quote === undefined) {
      quote = "'"
      continue
    }
    if (c === '$') {
      const rest = word.slice(i + 1)
      const braced = /^\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}/.exec(rest)
      if (braced !== null) {
        const value = lookupEnv(env, braced[1]!)
        if (braced[2] === '-') out += value === undefined || value === '' ? processWord(braced[3]!, env) : value
        else if (braced[2] === '+') out += value === undefined || value === '' ? '' : processWord(braced[3]!, env)
        else out += value ?? ''
        i += braced[0].length
        continue
      }
      const plain = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest)
      if (plain !== null) {
        out += lookupEnv(env, plain[0]) ?? ''
        i += plain[0].length
        continue
      }
    }
    out += c
  }
  return out
}

/** The JSON (exec) form of an argument list, or undefined for the shell form. */
function jsonForm(rest: string): string[] | undefined {
  if (!rest.startsWith('[')) return undefined
  try {
    const v: unknown = JSON.parse(rest)
    if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v as string[]
  } catch {
    // not JSON: the shell form, as the Dockerfile parser falls back to
  }
  return undefined
}

/** `k=v k2=v2` pairs, or the legacy `k value with spaces` form. */
function nameValues(command: string, rest: string, env: readonly string[]): Array<[string, string]> {
  const words = splitWords(rest)
  if (words.length === 0) throw invalid(`${command} requires at least one argument`)
  if (!words[0]!.includes('=')) {
    if (words.length < 2) throw invalid(`${command} names must be followed by a value: "${rest}"`)
    const value = rest.trimStart().slice(words[0]!.length).trim()
    return [[processWord(words[0]!, env), processWord(value, env)]]
  }
  return words.map((w) => {
    const eq = w.indexOf('=')
    if (eq <= 0) throw invalid(`${command} names can not be blank and need a value: "${w}"`)
    return [processWord(w.slice(0, eq), env), processWord(w.slice(eq + 1), env)]
  })
}

/** `80`, `53/udp`, `8000-8002/tcp` → "80/tcp"... */
function exposedPorts(spec: string): string[] {
  const m = /^(\d+)(?:-(\d+))?(?:\/([A-Za-z]+))?$/.exec(spec)
  if (m === null) throw invalid(`Invalid port specification for EXPOSE: "${spec}"`)
  const start = Number(m[1])
  const end = m[2] === undefined ? start : Number(m[2])
  const proto = (m[3] ?? 'tcp').toLowerCase()
  if (start < 1 || end > 65535 || end < start) throw invalid(`Invalid port range for EXPOSE: "${spec}"`)
  if (!['tcp', 'udp', 'sctp'].includes(proto)) throw invalid(`Invalid protocol for EXPOSE: "${spec}"`)
  const out: string[] = []
  for (let p = start; p <= end; p++) out.push(`${p}/${proto}`)
  return out
}

/**
 * Applies `changes` in order to a copy of `base` (default the empty config
 * `docker import` starts from) and returns it.
 * @example applyChanges(['CMD ["/bin/sh"]', 'ENV A=b']) // { Cmd: ['/bin/sh'], Env: ['A=b'] }
 */
export function applyChanges(changes: readonly string[], base: ContainerConfig = {}): ContainerConfig {
  const config: ContainerConfig = structuredClone(base)
  let cmdSet = false
  for (const change of changes) {
    const line = change.trim()
    const m = /^(\S+)\s*([\s\S]*)$/.exec(line)
    if (m === null) throw invalid('An empty change was given')
    const command = m[1]!.toUpperCase()
    const rest = m[2]!.trim()
    if (UNSUPPORTED_COMMANDS.includes(command)) {
      throw new StrataError('NOT_SUPPORTED', `${command} changes are valid for dockerd but not implemented by strata`)
    }
    if (!(CHANGE_COMMANDS as readonly string[]).includes(command)) {
      throw invalid(`${m[1]!.toLowerCase()} is not a valid change command`)
    }
    const env = config.Env ?? []
    switch (command) {
      case 'CMD':
      case 'ENTRYPOINT': {
        const args = jsonForm(rest) ?? ['/bin/sh', '-c', rest]
        if (command === 'CMD') {
          config.Cmd = args
          cmdSet = true
        } else {
          config.Entrypoint = rest === '' ? null : args
          if (!cmdSet) config.Cmd = null
        }
        break
      }
      case 'ENV': {
        const out = [...env]
        for (const [k, v] of nameValues('ENV', rest, env)) {
          const i = out.findIndex((e) => e === k || e.startsWith(`${k}=`))
          if (i >= 0) out[i] = `${k}=${v}`
          else out.push(`${k}=${v}`)
        }
        config.Env = out
        break
      }
      case 'LABEL': {
        const labels = { ...(config.Labels ?? {}) }
        for (const [k, v] of nameValues('LABEL', rest, env)) labels[k] = v
        config.Labels = labels
        break
      }
      case 'WORKDIR': {
        if (rest === '') throw invalid('WORKDIR requires exactly one argument')
        const dir = processWord(rest, env)
        config.WorkingDir = posix.isAbsolute(dir) ? posix.normalize(dir) : posix.join('/', config.WorkingDir ?? '', dir)
        break
      }
      case 'USER':
        if (rest === '') throw invalid('USER requires exactly one argument')
        config.User = processWord(rest, env)
        break
      case 'EXPOSE': {
        const words = splitWords(rest)
        if (words.length === 0) throw invalid('EXPOSE requires at least one argument')
        const ports = { ...(config.ExposedPorts ?? {}) }
        for (const w of words) for (const p of exposedPorts(processWord(w, env))) ports[p] = {}
        config.ExposedPorts = ports
        break
      }
      case 'VOLUME': {
        const list = jsonForm(rest) ?? splitWords(rest).map((w) => processWord(w, env))
        if (list.length === 0) throw invalid('VOLUME requires at least one argument')
        const volumes = { ...(config.Volumes ?? {}) }
        for (const v of list) {
          if (v.trim() === '') throw invalid('VOLUME specified can not be an empty string')
          volumes[v] = {}
        }
        config.Volumes = volumes
        break
      }
      case 'ONBUILD': {
        const trigger = (/^\S+/.exec(rest)?.[0] ?? '').toUpperCase()
        if (trigger === '') throw invalid('ONBUILD requires at least one argument')
        if (trigger === 'ONBUILD') throw invalid('Chaining ON BUILD via `ONBUILD ONBUILD` isn\'t allowed')
        if (FORBIDDEN_TRIGGERS.includes(trigger)) throw invalid(`${trigger} isn't allowed as an ONBUILD trigger`)
        config.OnBuild = [...(config.OnBuild ?? []), rest]
        break
      }
    }
  }
  return config
}

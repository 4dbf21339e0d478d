/**
 * A verb's flags and arguments, read as the docker CLI (cobra and pflag)
 * reads them, with docker's words when they are wrong:
 *
 * - flags anywhere among the arguments (`strata images busybox -a`),
 *   `--flag value`, `--flag=value`, `-f value`, `-fvalue`, `-f=value`,
 *   grouped short booleans (`-aq`), booleans as `--all=false`; `--` ends
 *   the flags;
 * - `--help`/`-h` on every verb: the verb's help on stdout, exit 0;
 * - an unknown or malformed flag is a FlagError (`unknown flag: --nope`,
 *   `unknown shorthand flag: 'x' in -x`, `flag needs an argument: --format`,
 *   `invalid argument "x" for "-a, --all" flag: ...`), printed with
 *   `See 'strata VERB --help'.` and exit 125 as docker prints it;
 * - a wrong number of arguments is an ArgCountError (`"strata images"
 *   requires at most 1 argument.` with the verb's usage line), exit 1 as
 *   in docker.
 *
 * Verbs do not know under which words they were called (`strata images`
 * or `strata image ls`): main.ts adds the command path when it prints.
 */
import { parseArgs } from 'node:util'
import { ArgCountError, FlagError, HelpRequest } from './errors.js'

export interface FlagSpec {
  type: 'string' | 'boolean'
  short?: string
  multiple?: boolean
  /** pflag's value check (e.g. an int): returns the message after `invalid argument "V" for "-n, --last" flag: `, or undefined when fine. */
  check?: (value: string) => string | undefined
}

export type FlagSpecs = Record<string, FlagSpec>

type FlagValue<S extends FlagSpec> = S['type'] extends 'boolean' ? boolean : S['multiple'] extends true ? string[] : string

export type FlagValues<O extends FlagSpecs> = { [K in keyof O]?: FlagValue<O[K]> }

export interface ParsedArgs<O extends FlagSpecs> {
  values: FlagValues<O>
  positionals: string[]
}

/** strconv.ParseBool's spellings. */
const TRUE_WORDS = new Set(['1', 't', 'T', 'TRUE', 'true', 'True'])
const FALSE_WORDS = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False'])

/** How pflag names a flag in its messages: `-a, --all` or `--digests`. */
function flagName(name: string, spec: FlagSpec): string {
  return spec.short === undefined ? `--${name}` : `-${spec.short}, --${name}`
}

/**
 * Reads `args` as docker reads a verb's command line. `help` is the verb's
 * help text: with --help/-h it is what the command prints.
 */
export function parseFlags<O extends FlagSpecs>(args: string[], options: O, help: string): ParsedArgs<O> {
  const config: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = { help: { type: 'boolean', short: 'h' } }
  for (const [name, spec] of Object.entries(options)) {
    config[name] = { type: spec.type, ...(spec.short === undefined ? {} : { short: spec.short }), ...(spec.multiple === true ? { multiple: true } : {}) }
  }
  const { tokens } = parseArgs({ args, options: config, strict: false, allowPositionals: true, tokens: true })
  const values: Record<string, unknown> = {}
  const positionals: string[] = []
  let wantsHelp = false
  // pflag names an unknown short flag with what is left of its group: `-ax` fails on 'x' "in -x".
  const seenInGroup = new Map<number, number>()
  const shortRest = (index: number): string => {
    const nth = seenInGroup.get(index) ?? 0
    return `-${args[index]!.slice(1 + nth)}`
  }
  for (const token of tokens) {
    if (token.kind === 'positional') {
      positionals.push(token.value)
      continue
    }
    if (token.kind !== 'option') continue
    const long = token.rawName.startsWith('--')
    const rest = long ? '' : shortRest(token.index)
    if (!long) seenInGroup.set(token.index, (seenInGroup.get(token.index) ?? 0) + 1)
    if (token.name === 'help') {
      wantsHelp = true
      continue
    }
    const spec = Object.hasOwn(options, token.name) ? options[token.name]! : undefined
    if (spec === undefined) {
      throw new FlagError(long ? `unknown flag: ${token.rawName}` : `unknown shorthand flag: '${token.rawName.slice(1)}' in ${rest}`)
    }
    let value = token.value
    // pflag reads `-f=x` as the value "x".
    if (!long && token.inlineValue === true && value?.startsWith('=') === true) value = value.slice(1)
    if (spec.type === 'boolean') {
      if (value === undefined) values[token.name] = true
      else if (TRUE_WORDS.has(value)) values[token.name] = true
      else if (FALSE_WORDS.has(value)) values[token.name] = false
      else throw new FlagError(`invalid argument "${value}" for "${flagName(token.name, spec)}" flag: strconv.ParseBool: parsing "${value}": invalid syntax`)
      continue
    }
    if (value === undefined) throw new FlagError(long ? `flag needs an argument: ${token.rawName}` : `flag needs an argument: '${token.rawName.slice(1)}' in ${rest}`)
    const problem = spec.check?.(value)
    if (problem !== undefined) throw new FlagError(`invalid argument "${value}" for "${flagName(token.name, spec)}" flag: ${problem}`)
    if (spec.multiple === true) values[token.name] = [...((values[token.name] as string[] | undefined) ?? []), value]
    else values[token.name] = value
  }
  if (wantsHelp) throw new HelpRequest(help)
  return { values: values as FlagValues<O>, positionals }
}

/** pflag's int flag check (strconv.ParseInt's message). */
export function intFlag(value: string): string | undefined {
  return /^[+-]?\d+$/.test(value) && Number.isSafeInteger(Number(value)) ? undefined : `strconv.ParseInt: parsing "${value}": invalid syntax`
}

export interface ArgCount {
  min?: number
  max?: number
}

const plural = (n: number): string => (n === 1 ? 'argument' : 'arguments')

/**
 * Checks the number of arguments as docker's cli.RequiresMinArgs,
 * RequiresMaxArgs, RequiresRangeArgs, ExactArgs and NoArgs word it.
 */
export function checkArgCount(positionals: string[], count: ArgCount, help: string): void {
  const n = positionals.length
  const { min, max } = count
  if ((min === undefined || n >= min) && (max === undefined || n <= max)) return
  let detail: string
  if (max === 0) detail = 'accepts no arguments.'
  else if (min !== undefined && min === max) detail = `requires exactly ${min} ${plural(min)}.`
  else if (min !== undefined && max !== undefined) detail = `requires at least ${min} and at most ${max} ${plural(max)}.`
  else if (min !== undefined) detail = `requires at least ${min} ${plural(min)}.`
  else detail = `requires at most ${max!} ${plural(max!)}.`
  throw new ArgCountError(detail, help)
}

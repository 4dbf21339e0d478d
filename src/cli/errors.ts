/**
 * The ways a command line can be wrong, printed by main.ts as the docker
 * CLI prints them (main adds the words the verb was called by, e.g.
 * `strata image ls`):
 *
 *   FlagError      unknown flag: --nope                  exit 125
 *                  See 'strata images --help'.
 *   ArgCountError  "strata images" requires at most 1 argument.   exit 1
 *                  See 'strata images --help'.
 *                  <blank>
 *                  Usage:  strata images [OPTIONS] [REPOSITORY[:TAG]]
 *                  <blank>
 *                  List images, newest first: ...
 *   UsageError     any other misuse (a bad flag value, a missing option),
 *                  its message and the See line, exit 125 (docker's status
 *                  for a command it did not run)
 *
 * A HelpRequest is not an error: --help, the verb's help on stdout, exit 0.
 */

/** docker's exit status for a command line it refuses (cli.StatusError 125). */
export const USAGE_EXIT = 125

/** A command line strata refuses; `message` is what is wrong, without the See line. */
export class UsageError extends Error {
  /** The exit status (125, or 1 for an argument count, as docker). */
  readonly exitCode: number
  constructor(message: string, exitCode = USAGE_EXIT) {
    super(message)
    this.name = 'UsageError'
    this.exitCode = exitCode
  }
}

/** A flag that is unknown, lacks its value or has a malformed one (pflag's words). */
export class FlagError extends UsageError {
  constructor(message: string) {
    super(message)
    this.name = 'FlagError'
  }
}

/** Too few or too many arguments: `detail` follows the quoted command ("requires exactly 2 arguments."). */
export class ArgCountError extends UsageError {
  readonly detail: string
  /** The verb's help text, whose usage line and first line of description docker repeats. */
  readonly help: string
  constructor(detail: string, help: string) {
    super(detail, 1)
    this.name = 'ArgCountError'
    this.detail = detail
    this.help = help
  }
}

/** --help on a verb: its help text goes to stdout. */
export class HelpRequest extends Error {
  readonly help: string
  constructor(help: string) {
    super('help requested')
    this.name = 'HelpRequest'
    this.help = help
  }
}

/** A word that names no verb: `strata nope`, `strata image nope` (docker's "is not a docker command", exit 1). */
export class UnknownCommandError extends UsageError {
  readonly word: string
  /** The group the word was looked up in ("image"), or undefined at the top level. */
  readonly group: string | undefined
  constructor(word: string, group?: string) {
    super(`'${word}' is not a strata${group === undefined ? '' : ` ${group}`} command.`, 1)
    this.name = 'UnknownCommandError'
    this.word = word
    this.group = group
  }
}

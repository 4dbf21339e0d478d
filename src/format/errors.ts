/**
 * The error a template raises, with Go's text as its message. Parse errors
 * (`template: :1: unexpected "}" in operand`) and execution errors
 * (`template: :1:2: executing "" at <.Foo>: map has no entry for key "Foo"`)
 * are INVALID_ARGUMENT: the template or its use of the data is wrong, not
 * the data. An execution error keeps what was written before it.
 */
import { StrataError } from '../errors/index.js'

export class TemplateError extends StrataError {
  /** Whether the template failed to parse or failed while running. */
  readonly phase: 'parse' | 'exec'
  /** The output written before an execution error ('' for parse errors). */
  readonly output: string

  constructor(phase: 'parse' | 'exec', message: string, output = '') {
    super('INVALID_ARGUMENT', message, { details: { phase } })
    this.name = 'TemplateError'
    this.phase = phase
    this.output = output
  }
}

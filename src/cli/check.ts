/** `strata check [--repair] [--format json]`: verify every layer, image and reference (fsck for a data root). */
import { parseArgs } from 'node:util'
import type { CheckProblem } from '../store/index.js'
import { UsageError } from './errors.js'
import type { GlobalOptions } from './global.js'
import type { CommandResult } from './output.js'
import { withStore } from './store.js'

export const CHECK_HELP = `Usage: strata check [--repair] [--format json]

Verify the store: every layer's content against its diffID (rebuilt from
tar-split), every image config against its ID and its layers, every tag and
digest reference against the images. Exit status 1 when a problem remains.

Options:
  --repair        Remove what cannot be trusted (and what depends on it)
  --format json   One JSON object per problem
`

export async function checkCommand(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { repair: { type: 'boolean' }, format: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  })
  if (values.help === true) return CHECK_HELP
  if (positionals.length > 0) throw new UsageError(`"strata check" takes no arguments; see "strata check --help"`)
  if (values.format !== undefined && values.format !== 'json') throw new UsageError(`--format takes "json", not "${values.format}"`)
  const problems = await withStore(global, (store) => store.check({ repair: values.repair === true }))
  const unrepaired = problems.filter((p) => p.repaired === undefined).length
  const stdout = values.format === 'json' ? problems.map((p) => `${JSON.stringify(p)}\n`).join('') : formatProblems(problems)
  return { stdout, exitCode: unrepaired > 0 ? 1 : 0, ...(unrepaired > 0 ? { stderr: `strata: check found ${unrepaired} problem${unrepaired === 1 ? '' : 's'}\n` } : {}) }
}

function formatProblems(problems: CheckProblem[]): string {
  if (problems.length === 0) return 'No problems found\n'
  return problems.map((p) => `${p.kind} ${p.subject}: ${p.message}${p.repaired === undefined ? '' : `\n  repaired: ${p.repaired}`}\n`).join('')
}

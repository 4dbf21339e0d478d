/** `strata check [--repair] [--format json]`: verify every layer, image and reference (fsck for a data root). */
import type { CheckProblem } from '../store/index.js'
import { checkArgCount, parseFlags } from './args.js'
import { UsageError } from './errors.js'
import type { GlobalOptions } from './global.js'
import type { CommandResult } from './output.js'
import { withStore } from './store.js'

export const CHECK_HELP = `Usage: strata check [--repair] [--format json]

Verify the store: every layer's content against its diffID (rebuilt from
tar-split), every image config against its ID and its layers, every tag and
digest reference against the images. It runs beside other commands: what
they change meanwhile is re-checked under the store's lock, never reported
as corruption. Layers no image, container or child layer refers to are
reported as warnings (layer-orphan), and what dead processes left is
reported as removed (debris). Exit status 1 when a problem remains.

Options:
  --repair        Remove what cannot be trusted (and what depends on it), and orphan layers
  --format json   One JSON object per problem
`

export async function checkCommand(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const { values, positionals } = parseFlags(args, { repair: { type: 'boolean' }, format: { type: 'string' } }, CHECK_HELP)
  checkArgCount(positionals, { max: 0 }, CHECK_HELP)
  if (values.format !== undefined && values.format !== 'json') throw new UsageError(`--format takes "json", not "${values.format}"`)
  const problems = await withStore(global, (store) => store.check({ repair: values.repair === true }))
  // Warnings (an orphan layer) are reported but do not fail the check.
  const unrepaired = problems.filter((p) => p.repaired === undefined && p.severity !== 'warning').length
  const stdout = values.format === 'json' ? problems.map((p) => `${JSON.stringify(p)}\n`).join('') : formatProblems(problems)
  return { stdout, exitCode: unrepaired > 0 ? 1 : 0, ...(unrepaired > 0 ? { stderr: `Error: check found ${unrepaired} problem${unrepaired === 1 ? '' : 's'}\n` } : {}) }
}

function formatProblems(problems: CheckProblem[]): string {
  if (problems.length === 0) return 'No problems found\n'
  return problems.map((p) => `${p.kind} ${p.subject}: ${p.message}${p.repaired === undefined ? '' : `\n  repaired: ${p.repaired}`}\n`).join('')
}

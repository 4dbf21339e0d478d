/**
 * `npm run bench [-- NAME...]`: strata next to its peers on the same input,
 * in one run, ratios printed as a markdown table (and written to
 * docs/benchmarks.md with --write). Needs root and the peers installed.
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { archiveBench } from './archive.js'
import { graphdriverBench } from './graphdriver.js'
import { formatResults, type CaseResult } from './harness.js'

const BENCHES: Record<string, (work: string, log: (m: string) => void) => Promise<CaseResult[]>> = {
  archive: archiveBench,
  graphdriver: graphdriverBench,
}

const args = process.argv.slice(2)
const write = args.includes('--write')
const names = args.filter((a) => !a.startsWith('--'))
const selected = names.length === 0 ? Object.keys(BENCHES) : names
const work = mkdtempSync(join(tmpdir(), 'strata-bench-'))
const log = (m: string): void => void process.stderr.write(`bench: ${m}\n`)
try {
  const sections: string[] = []
  for (const name of selected) {
    const bench = BENCHES[name]
    if (bench === undefined) throw new Error(`unknown benchmark "${name}"; known: ${Object.keys(BENCHES).join(', ')}`)
    mkdirSync(join(work, name))
    const results = await bench(join(work, name), log)
    sections.push(`## ${name}\n\n${formatResults(results)}\n`)
  }
  const report = `# Benchmarks\n\nMedian of 3 runs each, strata and peer alternating on the same input, on this machine (${new Date().toISOString().slice(0, 10)}).\n\n${sections.join('\n')}`
  process.stdout.write(report)
  if (write) {
    mkdirSync('docs', { recursive: true })
    writeFileSync('docs/benchmarks.md', report)
  }
} finally {
  rmSync(work, { recursive: true, force: true })
}

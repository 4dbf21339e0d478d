/**
 * `npm run bench [-- NAME...]`: strata next to its peers on the same input,
 * in one run, ratios printed as a markdown table (and written to
 * docs/benchmarks.md with --write). Needs root and the peers installed.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { apiBench } from './api.js'
import { archiveBench } from './archive.js'
import { cliBench } from './cli.js'
import { containerBench } from './container.js'
import { devicemapperBench } from './devicemapper.js'
import { exploreBench } from './explore.js'
import { graphdriverBench } from './graphdriver.js'
import { formatResults, type CaseResult } from './harness.js'
import { ratioChart, ratioRows } from './svg.js'
import { layerstoreBench } from './layerstore.js'
import { lifecycleBench } from './lifecycle.js'
import { loadBench } from './load.js'
import { migrateBench } from './migrate.js'
import { pullBench } from './pull.js'

const BENCHES: Record<string, (work: string, log: (m: string) => void) => Promise<CaseResult[]>> = {
  api: apiBench,
  archive: archiveBench,
  cli: cliBench,
  container: containerBench,
  devicemapper: devicemapperBench,
  explore: exploreBench,
  graphdriver: graphdriverBench,
  layerstore: layerstoreBench,
  lifecycle: lifecycleBench,
  load: loadBench,
  migrate: migrateBench,
  pull: pullBench,
}

const REPORT = 'docs/benchmarks.md'
/** The charts' directory, and how the page names it. */
const CHARTS = 'docs/benchmarks'

/** Writes the section's chart (bench/svg.ts) and returns the section with a reference to it under its heading. */
function withChart(name: string, text: string): string {
  const rows = ratioRows(text)
  if (rows.length === 0) return text
  writeFileSync(join(CHARTS, `${name}.svg`), ratioChart(name, rows))
  const ref = `![${name}: strata time / peer time](benchmarks/${name}.svg)`
  if (text.includes(`](benchmarks/${name}.svg)`)) return text
  return text.replace(/^(## \S+\n\n(?:_[^\n]*_\n\n)?)/, `$1${ref}\n\n`)
}
const HEADER = '# Benchmarks\n\nMedian of 3 runs each, strata and its peers alternating on the same input, on this machine; each section carries the date it was run (`npm run bench -- NAME --write` refreshes one).\n'

const args = process.argv.slice(2)
const write = args.includes('--write')
// --charts alone redraws the charts of docs/benchmarks.md from its tables, running nothing.
const chartsOnly = args.includes('--charts') && args.every((a) => a.startsWith('--'))
const names = args.filter((a) => !a.startsWith('--'))
const selected = chartsOnly ? [] : names.length === 0 ? Object.keys(BENCHES) : names
const work = mkdtempSync(join(tmpdir(), 'strata-bench-'))
const log = (m: string): void => void process.stderr.write(`bench: ${m}\n`)
try {
  const sections = new Map<string, string>()
  for (const name of selected) {
    const bench = BENCHES[name]
    if (bench === undefined) throw new Error(`unknown benchmark "${name}"; known: ${Object.keys(BENCHES).join(', ')}`)
    mkdirSync(join(work, name))
    const results = await bench(join(work, name), log)
    sections.set(name, `## ${name}\n\n_${new Date().toISOString().slice(0, 10)}_\n\n${formatResults(results)}\n`)
  }
  process.stdout.write([...sections.values()].join('\n'))
  if (write || chartsOnly) {
    // Sections of benchmarks not run this time are kept as they were.
    const all = new Map<string, string>()
    let header = HEADER
    if (existsSync(REPORT)) {
      const parts = readFileSync(REPORT, 'utf8').split(/^(?=## )/m)
      header = parts[0]!
      for (const part of parts.slice(1)) all.set(/^## (\S+)/.exec(part)![1]!, part.trimEnd() + '\n')
    }
    for (const [name, text] of sections) all.set(name, text)
    mkdirSync(CHARTS, { recursive: true })
    for (const [name, text] of all) all.set(name, withChart(name, text))
    writeFileSync(REPORT, `${header.trimEnd()}\n\n${[...all.values()].join('\n')}`)
  }
} finally {
  rmSync(work, { recursive: true, force: true })
}

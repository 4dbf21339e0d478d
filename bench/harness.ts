/**
 * Side-by-side timing: each case runs strata and its peer on the same
 * input, alternating (in a rotating order), a few times; the median of each is reported with the
 * ratio. Absolute times drift between machines, ratios less so.
 */
import { spawn } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const REPO = fileURLToPath(new URL('../../', import.meta.url))

/** The strata command as users get it (package.json "bin": the bundle `npm run bench` builds). */
export const STRATA_CLI = join(REPO, (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { bin: { strata: string } }).bin.strata)

export interface Contender {
  name: string
  /** Runs once; `prepare` (untimed) runs before each run. */
  run: () => Promise<void>
  prepare?: () => Promise<void>
}

export interface CaseResult {
  title: string
  strata: { name: string; ms: number }
  peers: Array<{ name: string; ms: number }>
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

export async function compare(title: string, strata: Contender, peers: Contender[], runs = 3): Promise<CaseResult> {
  const all = [strata, ...peers]
  const times = new Map<string, number[]>(all.map((c) => [c.name, []]))
  for (let i = 0; i < runs; i++) {
    // Each round starts with the next contender, so none always runs right
    // after the same neighbour (disk writeback of the previous run leaks in).
    for (const c of [...all.slice(i % all.length), ...all.slice(0, i % all.length)]) {
      await c.prepare?.()
      const t0 = performance.now()
      await c.run()
      times.get(c.name)!.push(performance.now() - t0)
    }
  }
  return {
    title,
    strata: { name: strata.name, ms: median(times.get(strata.name)!) },
    peers: peers.map((p) => ({ name: p.name, ms: median(times.get(p.name)!) })),
  }
}

/** Runs a shell pipeline (bash -c), rejecting on a non-zero exit. */
export function sh(script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-o', 'pipefail', '-c', script], { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${script}: exit ${code}: ${err}`))))
  })
}

/** A markdown table cell: a `|` in it (a shell pipeline as a peer's name) would end the cell, so it is escaped. */
export function tableCell(text: string): string {
  return text.replace(/\|/g, '\\|')
}

/** Seconds for the table: three decimals under 0.1 s (a CLI call through a warm server takes a few hundredths), else two. */
function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 100 ? 3 : 2)} s`
}

export function formatResults(results: CaseResult[]): string {
  const lines = ['| case | strata | peer | peer time | strata / peer |', '|---|---|---|---|---|']
  for (const r of results) {
    const title = tableCell(r.title)
    if (r.peers.length === 0) lines.push(`| ${title} | ${seconds(r.strata.ms)} | (no peer) | | |`)
    for (const p of r.peers) {
      lines.push(`| ${title} | ${seconds(r.strata.ms)} | ${tableCell(p.name)} | ${seconds(p.ms)} | ${(r.strata.ms / p.ms).toFixed(2)} |`)
    }
  }
  return lines.join('\n')
}

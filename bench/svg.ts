/**
 * The benchmark page's charts: each table of docs/benchmarks.md drawn as
 * horizontal bars of strata's time over the peer's (the table's last
 * column), with a line at 1 (as fast as the peer), so the ratios read at a
 * glance. Plain SVG written by hand: no dependency, and the charts are
 * made from the tables themselves, so a section kept from an earlier run
 * gets its chart too.
 */

export interface RatioRow {
  /** The case (first column). */
  title: string
  /** The peer it is compared with. */
  peer: string
  strataSeconds: number
  peerSeconds: number
  /** The times as the table printed them (its precision, not more). */
  strataText: string
  peerText: string
  ratio: number
}

/** The rows of the markdown tables in `section` that carry a ratio (rows without a peer are left out). */
export function ratioRows(section: string): RatioRow[] {
  const rows: RatioRow[] = []
  for (const line of section.split('\n')) {
    if (!line.startsWith('|')) continue
    // Cells split on unescaped bars only (formatResults escapes a `|` inside a cell as `\|`).
    const cells = line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim().replace(/\\\|/g, '|'))
    if (cells.length !== 5) continue
    const [title, strata, peer, peerTime, ratio] = cells as [string, string, string, string, string]
    const r = Number(ratio)
    const s = /^([\d.]+) s$/.exec(strata)
    const p = /^([\d.]+) s$/.exec(peerTime)
    if (ratio === '' || !Number.isFinite(r) || s === null || p === null) continue
    rows.push({ title, peer, strataSeconds: Number(s[1]), peerSeconds: Number(p[1]), strataText: strata, peerText: peerTime, ratio: r })
  }
  return rows
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`
}

const WIDTH = 960
const LEFT = 16
const BAR_LEFT = 16
const BAR_WIDTH = 700
const ROW = 44
const TOP = 56

/**
 * A bar chart of `rows` (strata / peer), titled `name`. The scale is
 * logarithmic and the bars grow from the 1× line: left when strata is
 * faster, right when slower, so 0.5× and 2× are bars of the same length
 * (the tables hold ratios from 0.07 to over 200).
 */
export function ratioChart(name: string, rows: RatioRow[]): string {
  const lo = Math.min(0.5, ...rows.map((r) => r.ratio)) / 1.25
  const hi = Math.max(2, ...rows.map((r) => r.ratio)) * 1.25
  const x = (ratio: number): number => BAR_LEFT + ((Math.log(Math.max(ratio, 1e-6)) - Math.log(lo)) / (Math.log(hi) - Math.log(lo))) * BAR_WIDTH
  const one = x(1)
  const height = TOP + rows.length * ROW + 24
  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`)
  out.push(`<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`)
  out.push(`<text x="${LEFT}" y="22" font-size="16" font-weight="bold">${escapeXml(name)}: strata time / peer time (log scale; the dashed line is 1×, the peer)</text>`)
  out.push(`<text x="${LEFT}" y="40" fill="#555">green, left of the line: strata faster; orange, right: slower. Each row: the case and the peer, then the ratio and both times.</text>`)
  rows.forEach((r, i) => {
    const y = TOP + i * ROW
    out.push(`<text x="${LEFT}" y="${y + 12}">${escapeXml(clip(`${r.title} — vs ${r.peer}`, 150))}</text>`)
    const end = x(r.ratio)
    const left = Math.min(one, end)
    const w = Math.max(1, Math.abs(end - one))
    const colour = r.ratio <= 1 ? '#3a9d5d' : '#e08a2c'
    out.push(`<rect x="${left.toFixed(1)}" y="${y + 18}" width="${w.toFixed(1)}" height="16" fill="${colour}"/>`)
    out.push(`<text x="${(Math.max(one, end) + 6).toFixed(1)}" y="${y + 31}">${r.ratio.toFixed(2)}× (${r.strataText} vs ${r.peerText})</text>`)
  })
  // The 1× line across the bars only, not through the rows' labels.
  rows.forEach((_, i) => {
    const y = TOP + i * ROW
    out.push(`<line x1="${one.toFixed(1)}" y1="${y + 15}" x2="${one.toFixed(1)}" y2="${y + 37}" stroke="#222" stroke-dasharray="3 2"/>`)
  })
  out.push(`<text x="${one.toFixed(1)}" y="${TOP + rows.length * ROW + 16}" text-anchor="middle">1× (the peer)</text>`)
  out.push('</svg>')
  return `${out.join('\n')}\n`
}

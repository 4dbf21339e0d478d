// dive's efficiency figures for the image, and the files it counts as wasted.
import { useState } from 'preact/hooks'
import type { ImageAnalysis } from './api.js'
import { bytes } from './format.js'
import { Name } from './Name.js'

export function Efficiency({ analysis }: { analysis: ImageAnalysis | { error: string } | null }) {
  const [all, setAll] = useState(false)
  if (analysis === null) return <section class="panel muted pad">Reading the layers…</section>
  if ('error' in analysis) return null
  const e = analysis.efficiency
  const score = Math.round(e.score * 1000) / 10
  const rows = all ? e.inefficiencies : e.inefficiencies.slice(0, 8)
  return (
    <section class="panel efficiency" data-testid="efficiency">
      <h2>
        Efficiency <span class="muted small">as dive computes it</span>
      </h2>
      {analysis.incomplete && <div class="banner warn">A layer could not be read: these figures leave it out.</div>}
      <div class="stats">
        <div class={`stat ${score >= 95 ? 'good' : score >= 80 ? 'fair' : 'poor'}`}>
          <div class="stat-value" data-testid="efficiency-score">
            {score}%
          </div>
          <div class="stat-label">efficiency</div>
        </div>
        <div class="stat">
          <div class="stat-value" data-testid="efficiency-wasted">
            {bytes(e.wastedBytes)}
          </div>
          <div class="stat-label">wasted</div>
        </div>
        <div class="stat">
          <div class="stat-value">{e.userSizeBytes === 0 ? '—' : `${Math.round(e.wastedUserPercent * 1000) / 10}%`}</div>
          <div class="stat-label">of the {bytes(e.userSizeBytes)} above the base layer</div>
        </div>
      </div>
      {e.inefficiencyCount === 0 ? (
        <p class="muted">No file is stored twice or deleted after being added.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th class="num">Count</th>
              <th class="num">Total space</th>
              <th>Path</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((i) => (
              <tr data-testid="inefficiency">
                <td class="num mono">{i.count}</td>
                <td class="num mono">{bytes(i.cumulativeSize)}</td>
                <td class="path">
                  <Name text={i.path} class="mono" />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {e.inefficiencies.length > 8 && (
        <button class="link-button" onClick={() => setAll(!all)}>
          {all ? 'Show fewer' : `Show ${e.inefficiencies.length - 8} more${e.inefficiencyCount > e.inefficiencies.length ? ` (of ${e.inefficiencyCount - 8})` : ''}`}
        </button>
      )}
    </section>
  )
}

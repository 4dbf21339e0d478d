// Two images side by side: the layers they share and the files that differ.
import { useEffect, useState } from 'preact/hooks'
import { api, type ImageComparison } from './api.js'
import { bytes } from './format.js'
import { Name } from './Name.js'

const LABEL: Record<string, string> = { 'only-a': 'only in this image', 'only-b': 'only in the other', changed: 'different' }

export function Compare({ a, b, label, onClose }: { a: string; b: string; label: string; onClose: () => void }) {
  const [cmp, setCmp] = useState<ImageComparison | { error: string } | null>(null)
  useEffect(() => {
    setCmp(null)
    api.compare(a, b).then(setCmp, (e: Error) => setCmp({ error: e.message }))
  }, [a, b])
  return (
    <section class="panel compare" data-testid="compare">
      <div class="title-row">
        <h2>
          Compared with <Name text={label} class="plain" />
        </h2>
        <button class="close" onClick={onClose} title="Back to the file tree">
          ×
        </button>
      </div>
      {cmp === null && <div class="muted pad">Comparing…</div>}
      {cmp !== null && 'error' in cmp && <div class="banner error">{cmp.error}</div>}
      {cmp !== null && !('error' in cmp) && (
        <>
          {cmp.incomplete && <div class="banner warn">A layer could not be read: the comparison leaves it out.</div>}
          <div class="stats">
            <div class="stat">
              <div class="stat-value" data-testid="shared-layers">
                {cmp.sharedLayers.length}
              </div>
              <div class="stat-label">shared layers ({bytes(cmp.sharedLayers.reduce((s, l) => s + Math.max(l.size, 0), 0))}, stored once)</div>
            </div>
            <div class="stat">
              <div class="stat-value">
                {cmp.onlyA} / {cmp.onlyB}
              </div>
              <div class="stat-label">layers of their own</div>
            </div>
            <div class="stat">
              <div class="stat-value" data-testid="compare-counts">
                <span class="badge-removed">{cmp.counts.onlyA}</span> <span class="badge-added">{cmp.counts.onlyB}</span> <span class="badge-modified">{cmp.counts.changed}</span>
              </div>
              <div class="stat-label">paths only here / only there / different</div>
            </div>
          </div>
          <div class="tree-head cmp-head">
            <span class="c-mark" />
            <span class="c-name">Path</span>
            <span class="c-size">this image</span>
            <span class="c-size">the other</span>
          </div>
          <div class="rows static">
            {cmp.differences.map((d) => (
              <div class={`row cmp-${d.change}`} data-testid="compare-row">
                <span class={`c-mark badge-${d.change === 'only-a' ? 'removed' : d.change === 'only-b' ? 'added' : 'modified'}`}>{d.change === 'only-a' ? '−' : d.change === 'only-b' ? '+' : '~'}</span>
                <span class="c-name">
                  <Name text={d.path} class="mono" /> <span class="muted small">{LABEL[d.change]}</span>
                </span>
                <span class="c-size mono">{d.change === 'only-b' || d.kind !== 'file' ? '' : bytes(d.sizeA)}</span>
                <span class="c-size mono">{d.change === 'only-a' || d.kind !== 'file' ? '' : bytes(d.sizeB)}</span>
              </div>
            ))}
            {cmp.differences.length === 0 && <div class="muted pad">Their files are the same.</div>}
          </div>
        </>
      )}
    </section>
  )
}

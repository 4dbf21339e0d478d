// The explorer's page: images on the left; for the chosen image its
// layers, dive's efficiency and the file tree at the chosen layer, or a
// comparison with another image. The choice lives in the URL's hash
// (#image=ID&layer=K, #image=A&compare=B) so a view can be reloaded or shared.
import { useEffect, useState } from 'preact/hooks'
import { api, type ExploreImage, type ExploreImageSummary, type ImageAnalysis, type LayerChangeCounts } from './api.js'
import { Compare } from './Compare.js'
import { Efficiency } from './Efficiency.js'
import { FileTree } from './FileTree.js'
import { bytes, date, shortId } from './format.js'
import { Name } from './Name.js'

interface Route {
  image?: string
  layer?: number
  compare?: string
}

function readHash(): Route {
  const q = new URLSearchParams(location.hash.slice(1))
  const layer = q.get('layer')
  return { image: q.get('image') ?? undefined, layer: layer === null ? undefined : Number(layer), compare: q.get('compare') ?? undefined }
}

function writeHash(r: Route): void {
  const q = new URLSearchParams()
  if (r.image !== undefined) q.set('image', r.image)
  if (r.layer !== undefined) q.set('layer', String(r.layer))
  if (r.compare !== undefined) q.set('compare', r.compare)
  history.replaceState(null, '', `#${q.toString()}`)
}

export function App() {
  const [info, setInfo] = useState<{ root: string; driver: string } | null>(null)
  const [images, setImages] = useState<ExploreImageSummary[] | { error: string } | null>(null)
  const [route, setRoute] = useState<Route>(readHash)
  const [filter, setFilter] = useState('')

  useEffect(() => {
    api.info().then(setInfo, () => {})
    api.images().then(setImages, (e: Error) => setImages({ error: e.message }))
    const onHash = (): void => setRoute(readHash())
    addEventListener('hashchange', onHash)
    return () => removeEventListener('hashchange', onHash)
  }, [])

  const go = (r: Route): void => {
    writeHash(r)
    setRoute(r)
  }
  const list = images !== null && !('error' in images) ? images : []
  const shown = list.filter((i) => filter === '' || i.tags.some((t) => t.includes(filter)) || i.id.includes(filter))
  return (
    <div class="app">
      <header class="top">
        <span class="logo">
          strata <b>explore</b>
        </span>
        {info !== null && (
          <span class="muted">
            {info.root} · {info.driver}
          </span>
        )}
      </header>
      <aside class="images">
        <input class="search" type="search" placeholder="Filter images…" value={filter} onInput={(e) => setFilter((e.target as HTMLInputElement).value)} />
        {images === null && <div class="muted pad">Loading images…</div>}
        {images !== null && 'error' in images && <div class="banner error">{images.error}</div>}
        {images !== null && !('error' in images) && images.length === 0 && <div class="muted pad">No images in this store.</div>}
        {shown.map((i) => (
          <button class={`image-item${route.image === i.id ? ' selected' : ''}`} data-testid="image-item" data-id={i.id} onClick={() => go({ image: i.id })}>
            <div class="image-tags">{i.tags.length > 0 ? i.tags.map((t) => <Name text={t} class="image-tag" />) : <span class="muted">&lt;none&gt;</span>}</div>
            <div class="image-meta">
              <span class="mono">{shortId(i.id)}</span>
              <span>{bytes(i.size)}</span>
              <span>
                {i.layerCount} layer{i.layerCount === 1 ? '' : 's'}
              </span>
            </div>
            <div class="image-meta muted">{date(i.created)}</div>
          </button>
        ))}
      </aside>
      <main class="main">
        {route.image === undefined ? (
          <div class="empty-state">
            <h2>Pick an image</h2>
            <p class="muted">See what each of its layers added, changed, removed and wasted, file by file, read from the store without unpacking anything.</p>
          </div>
        ) : (
          <ImageView key={route.image} id={route.image} route={route} go={go} images={list} />
        )}
      </main>
    </div>
  )
}

function ImageView({ id, route, go, images }: { id: string; route: Route; go: (r: Route) => void; images: ExploreImageSummary[] }) {
  const [image, setImage] = useState<ExploreImage | { error: string } | null>(null)
  const [analysis, setAnalysis] = useState<ImageAnalysis | { error: string } | null>(null)
  useEffect(() => {
    api.image(id).then(setImage, (e: Error) => setImage({ error: e.message }))
    api.analysis(id).then(setAnalysis, (e: Error) => setAnalysis({ error: e.message }))
  }, [id])
  if (image === null) return <div class="muted pad">Loading…</div>
  if ('error' in image) return <div class="banner error">{image.error}</div>
  const top = image.layers.length - 1
  const layer = route.layer !== undefined && route.layer >= 0 && route.layer <= top ? route.layer : top
  const counts = analysis !== null && !('error' in analysis) ? analysis.layers : undefined
  const problems = image.layers.flatMap((l) => {
    const p = l.problem ?? counts?.[l.index]?.problem
    return p === undefined ? [] : [{ index: l.index, problem: p }]
  })
  return (
    <div class="image-view">
      <section class="panel image-head">
        <div class="title-row">
          <h1>{image.tags.length > 0 ? <Name text={image.tags.join(', ')} /> : <span class="muted">&lt;none&gt;</span>}</h1>
          <label class="compare-pick">
            Compare with{' '}
            <select data-testid="compare-select" value={route.compare ?? ''} onChange={(e) => go({ image: id, layer: route.layer, compare: (e.target as HTMLSelectElement).value || undefined })}>
              <option value="">—</option>
              {images
                .filter((i) => i.id !== id)
                .map((i) => (
                  <option value={i.id}>{i.tags[0] ?? shortId(i.id)}</option>
                ))}
            </select>
          </label>
        </div>
        <div class="facts">
          <span class="mono" title={image.id}>
            {image.id}
          </span>
        </div>
        <div class="facts">
          <span>{bytes(image.size)}</span>
          <span>
            {image.layers.length} layer{image.layers.length === 1 ? '' : 's'}
          </span>
          <span>
            {image.os}/{image.architecture}
          </span>
          <span>created {date(image.created)}</span>
          {image.command.length > 0 && (
            <span>
              runs <code>{image.command.join(' ')}</code>
            </span>
          )}
        </div>
      </section>
      <div class="columns">
        <div class="left">
          <Layers image={image} counts={counts} countsError={analysis !== null && 'error' in analysis ? analysis.error : undefined} selected={layer} onSelect={(k) => go({ image: id, layer: k })} />
          <Efficiency analysis={analysis} />
        </div>
        <div class="right">
          {route.compare !== undefined ? (
            <Compare a={id} b={route.compare} label={images.find((i) => i.id === route.compare)?.tags[0] ?? shortId(route.compare)} onClose={() => go({ image: id, layer: route.layer })} />
          ) : image.layers.length === 0 ? (
            <div class="panel muted pad">This image has no layers.</div>
          ) : (
            <FileTree imageId={id} layer={layer} problems={problems} />
          )}
        </div>
      </div>
    </div>
  )
}

function Layers({ image, counts, countsError, selected, onSelect }: { image: ExploreImage; counts: LayerChangeCounts[] | undefined; countsError: string | undefined; selected: number; onSelect: (k: number) => void }) {
  return (
    <section class="panel layers">
      <h2>Layers</h2>
      {countsError !== undefined && <div class="banner error">{countsError}</div>}
      <table>
        <thead>
          <tr>
            <th>#</th>
            <th class="num">Size</th>
            <th class="num" title="Paths added, modified and removed relative to the layers below">
              Changes
            </th>
            <th class="num" title="Bytes of files from lower layers that this layer overwrites or removes">
              Wasted
            </th>
            <th>Command</th>
          </tr>
        </thead>
        <tbody>
          {image.layers.map((l) => {
            const c = counts?.[l.index]
            const problem = l.problem ?? c?.problem
            return (
              <tr class={`${l.index === selected ? 'selected' : ''}${problem !== undefined ? ' broken' : ''}`} data-testid="layer-row" data-index={l.index} onClick={() => onSelect(l.index)}>
                <td class="mono">{l.index}</td>
                <td class="num mono">{bytes(l.size)}</td>
                <td class="num mono counts">
                  {problem !== undefined ? (
                    <span class="warn-sign" title={problem.message}>
                      ⚠ unreadable
                    </span>
                  ) : c === undefined ? (
                    <span class="muted">…</span>
                  ) : (
                    <>
                      <span class={c.added === 0 ? 'zero' : 'badge-added'} data-testid="added">
                        +{c.added}
                      </span>{' '}
                      <span class={c.modified === 0 ? 'zero' : 'badge-modified'} data-testid="modified">
                        ~{c.modified}
                      </span>{' '}
                      <span class={c.removed === 0 ? 'zero' : 'badge-removed'} data-testid="removed">
                        −{c.removed}
                      </span>
                    </>
                  )}
                </td>
                <td class="num mono" data-testid="wasted">
                  {c === undefined || problem !== undefined ? '' : c.wastedBytes === 0 ? '—' : bytes(c.wastedBytes)}
                </td>
                <td class="cmd" title={l.createdBy}>
                  <div class="cmd-text">{l.createdBy.replace(/^\/bin\/sh -c (#\(nop\) )?/, '') || <span class="muted">(no history)</span>}</div>
                  <div class="muted mono small" title={l.diffId}>
                    {l.diffId.slice(0, 19)}…
                  </div>
                  {problem !== undefined && <div class="error-text small">{problem.message}</div>}
                </td>
              </tr>
            )
          })}
        </tbody>
      </table>
    </section>
  )
}

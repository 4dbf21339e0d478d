// The file tree of the image at one layer: directories load when opened
// (one API call each), and only the rows in sight are in the DOM, so a
// directory of 100k entries scrolls like one of ten.
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks'
import { api, type LayerProblem, type PathHistory, type TreeEntry, type TreeFilter } from './api.js'
import { bytes, date, modeString } from './format.js'
import { Name } from './Name.js'

const ROW = 24
/** Entries per request: a directory of 100k entries arrives a page at a time, as it is scrolled to. */
const PAGE = 500

/** A directory's entries as far as loaded: `entries[i]` is undefined until its page arrives. */
interface Loaded {
  total: number
  entries: Array<TreeEntry | undefined>
}

type Listing = Loaded | { error: string } | 'loading'

interface Row {
  entry: TreeEntry | null
  depth: number
  /** A placeholder for a directory being loaded or that failed. */
  note?: string
  /** A placeholder for an entry whose page is not loaded yet. */
  pending?: { path: string; index: number }
  key: string
}

const MARK_SIGN: Record<string, string> = { added: '+', modified: '~', removed: '−', unchanged: '' }
const SIZES: Array<[string, number]> = [
  ['any size', 0],
  ['≥ 1 kB', 1000],
  ['≥ 10 kB', 10_000],
  ['≥ 100 kB', 100_000],
  ['≥ 1 MB', 1_000_000],
  ['≥ 10 MB', 10_000_000],
]

export function FileTree({ imageId, layer, problems }: { imageId: string; layer: number; problems: Array<{ index: number; problem: LayerProblem }> }) {
  const [filter, setFilter] = useState<TreeFilter>({ onlyChanges: false, minSize: 0 })
  const [query, setQuery] = useState('')
  const [debounced, setDebounced] = useState('')
  const [listings, setListings] = useState<Map<string, Listing>>(new Map())
  const [expanded, setExpanded] = useState<Set<string>>(new Set())
  const [results, setResults] = useState<{ entries: TreeEntry[]; total: number } | { error: string } | null>(null)
  const [selected, setSelected] = useState<TreeEntry | null>(null)
  const generation = useRef(0)

  useEffect(() => {
    const t = setTimeout(() => setDebounced(query.trim()), 200)
    return () => clearTimeout(t)
  }, [query])

  // A new image, layer or filter: every listing is stale; the open directories stay open.
  useEffect(() => {
    generation.current++
    setListings(new Map())
  }, [imageId, layer, filter.onlyChanges, filter.minSize])

  useEffect(() => {
    setExpanded(new Set())
    setSelected(null)
  }, [imageId])

  const pages = useRef(new Set<string>())
  const load = (path: string): void => {
    const gen = generation.current
    setListings((m) => new Map(m).set(path, 'loading'))
    api.dir(imageId, layer, path, filter, 0, PAGE).then(
      (l) => gen === generation.current && setListings((m) => new Map(m).set(path, { total: l.total, entries: l.entries })),
      (e: Error) => gen === generation.current && setListings((m) => new Map(m).set(path, { error: e.message })),
    )
  }
  /** Fetches the page holding entry `index` of `path`, once. */
  const loadPage = (path: string, index: number): void => {
    const offset = Math.floor(index / PAGE) * PAGE
    const key = `${generation.current}\u0000${path}\u0000${offset}`
    if (pages.current.has(key)) return
    pages.current.add(key)
    const gen = generation.current
    api.dir(imageId, layer, path, filter, offset, PAGE).then((l) => {
      if (gen !== generation.current) return
      setListings((m) => {
        const cur = m.get(path)
        if (cur === undefined || cur === 'loading' || 'error' in cur) return m
        const entries = cur.entries.slice()
        l.entries.forEach((e, i) => (entries[offset + i] = e))
        return new Map(m).set(path, { total: cur.total, entries })
      })
    }, () => pages.current.delete(key))
  }

  useEffect(() => {
    if (debounced === '') {
      setResults(null)
      return
    }
    let live = true
    api.search(imageId, layer, debounced, filter).then(
      (r) => live && setResults(r),
      (e: Error) => live && setResults({ error: e.message }),
    )
    return () => {
      live = false
    }
  }, [imageId, layer, debounced, filter.onlyChanges, filter.minSize])

  const rows = useMemo(() => {
    const out: Row[] = []
    const walk = (path: string, depth: number): void => {
      const l = listings.get(path)
      if (l === undefined || l === 'loading') {
        out.push({ entry: null, depth, note: 'loading…', key: `${path}\u0000loading` })
        return
      }
      if ('error' in l) {
        out.push({ entry: null, depth, note: l.error, key: `${path}\u0000error` })
        return
      }
      if (l.total === 0 && depth === 0) out.push({ entry: null, depth, note: filter.onlyChanges || filter.minSize ? 'Nothing here matches the filters.' : 'This layer leaves the image empty.', key: 'empty' })
      for (let i = 0; i < l.total; i++) {
        const e = l.entries[i]
        if (e === undefined) {
          out.push({ entry: null, depth, note: '…', pending: { path, index: i }, key: `${path}\u0000${i}` })
          continue
        }
        out.push({ entry: e, depth, key: e.path })
        if (e.kind === 'dir' && expanded.has(e.path)) walk(e.path, depth + 1)
      }
    }
    if (results !== null) {
      if ('error' in results) out.push({ entry: null, depth: 0, note: results.error, key: 'search-error' })
      else for (const e of results.entries) out.push({ entry: e, depth: 0, key: `s:${e.path}` })
    } else walk('/', 0)
    return out
  }, [listings, expanded, results])

  // Fetch what the rows show as not loaded yet (the root, and directories opened before a reset).
  useEffect(() => {
    if (results !== null) return
    if (!listings.has('/')) load('/')
    for (const path of expanded) {
      if (listings.has(path)) continue
      const parent = path.slice(0, path.lastIndexOf('/')) || '/'
      const pl = listings.get(parent)
      if (pl !== undefined && pl !== 'loading' && !('error' in pl) && pl.entries.some((e) => e?.path === path)) load(path)
    }
  }, [listings, expanded, results])

  const toggle = (e: TreeEntry): void => {
    setSelected(e)
    if (e.kind !== 'dir' || results !== null) return
    setExpanded((s) => {
      const n = new Set(s)
      if (n.has(e.path)) n.delete(e.path)
      else n.add(e.path)
      return n
    })
  }

  const here = problems.filter((p) => p.index <= layer)
  return (
    <section class="panel tree-panel">
      <div class="toolbar">
        <label class="check">
          <input type="checkbox" data-testid="only-changes" checked={filter.onlyChanges} onChange={(ev) => setFilter({ ...filter, onlyChanges: (ev.target as HTMLInputElement).checked })} />
          Only changes
        </label>
        <select data-testid="min-size" value={String(filter.minSize)} onChange={(ev) => setFilter({ ...filter, minSize: Number((ev.target as HTMLSelectElement).value) })}>
          {SIZES.map(([label, n]) => (
            <option value={String(n)}>{label}</option>
          ))}
        </select>
        <input class="search" type="search" data-testid="name-search" placeholder="Search names…" value={query} onInput={(ev) => setQuery((ev.target as HTMLInputElement).value)} />
        {results !== null && !('error' in results) && (
          <span class="muted" data-testid="search-count">
            {results.total} match{results.total === 1 ? '' : 'es'}
            {results.total > results.entries.length ? ` (first ${results.entries.length})` : ''}
          </span>
        )}
      </div>
      {here.map((p) => (
        <div class={`banner ${p.index === layer ? 'error' : 'warn'}`} data-testid="layer-error">
          {p.index === layer ? `Layer ${p.index} could not be read: ` : `Layer ${p.index} below could not be read; this view leaves it out: `}
          {p.problem.message}
        </div>
      ))}
      <div class="tree-head">
        <span class="c-mark" />
        <span class="c-name">Name</span>
        <span class="c-mode">Mode</span>
        <span class="c-owner">Owner</span>
        <span class="c-size">Size</span>
      </div>
      <VirtualRows rows={rows} selected={selected?.path} onRow={toggle} expanded={expanded} search={results !== null} onPending={loadPage} />
      {selected !== null && <Details imageId={imageId} entry={selected} onClose={() => setSelected(null)} />}
    </section>
  )
}

function VirtualRows({
  rows,
  selected,
  onRow,
  expanded,
  search,
  onPending,
}: {
  rows: Row[]
  selected: string | undefined
  onRow: (e: TreeEntry) => void
  expanded: Set<string>
  search: boolean
  onPending: (path: string, index: number) => void
}) {
  const box = useRef<HTMLDivElement>(null)
  const [scroll, setScroll] = useState(0)
  const [height, setHeight] = useState(600)
  useLayoutEffect(() => {
    const el = box.current
    if (el === null) return
    const ro = new ResizeObserver(() => setHeight(el.clientHeight))
    ro.observe(el)
    setHeight(el.clientHeight)
    return () => ro.disconnect()
  }, [])
  const first = Math.max(0, Math.floor(scroll / ROW) - 10)
  const last = Math.min(rows.length, Math.ceil((scroll + height) / ROW) + 10)
  // Entries in sight whose page has not arrived: ask for it.
  useEffect(() => {
    for (let i = first; i < last; i++) {
      const p = rows[i]?.pending
      if (p !== undefined) onPending(p.path, p.index)
    }
  }, [rows, first, last])
  return (
    <div class="rows" ref={box} data-testid="tree" onScroll={(ev) => setScroll((ev.target as HTMLDivElement).scrollTop)}>
      <div style={{ height: `${rows.length * ROW}px`, position: 'relative' }}>
        <div style={{ transform: `translateY(${first * ROW}px)` }}>
          {rows.slice(first, last).map((r) =>
            r.entry === null ? (
              <div key={r.key} class="row note" style={{ paddingLeft: `${8 + r.depth * 16}px` }}>
                {r.note}
              </div>
            ) : (
              <TreeRow key={r.key} e={r.entry} depth={r.depth} open={expanded.has(r.entry.path)} selected={selected === r.entry.path} onClick={onRow} search={search} />
            ),
          )}
        </div>
      </div>
    </div>
  )
}

function TreeRow({ e, depth, open, selected, onClick, search }: { e: TreeEntry; depth: number; open: boolean; selected: boolean; onClick: (e: TreeEntry) => void; search: boolean }) {
  const isDir = e.kind === 'dir'
  return (
    <div
      class={`row mark-${e.mark}${selected ? ' selected' : ''}`}
      data-testid="tree-row"
      data-path={e.path}
      data-mark={e.mark}
      data-kind={e.kind}
      onClick={() => onClick(e)}
    >
      <span class={`c-mark badge-${e.mark}`}>{MARK_SIGN[e.mark]}</span>
      <span class="c-name" style={{ paddingLeft: `${depth * 16}px` }}>
        <span class="twisty">{isDir && !search ? (open ? '▾' : '▸') : ''}</span>
        <Name text={search ? e.path : e.name} class={`name kind-${e.kind}`} />
        {isDir && !search ? '/' : ''}
        {e.link !== '' && (
          <span class="link">
            {e.kind === 'hardlink' ? ' ⇒ ' : ' → '}
            <Name text={e.link} />
          </span>
        )}
        {e.opaque && <span class="tag tag-opaque" title="This layer hid everything the layers below had in this directory">opaque</span>}
        {e.kind === 'hardlink' && <span class="tag">hardlink</span>}
        {e.implicit && <span class="tag" title="No layer lists this directory; it exists because paths below it do">implicit</span>}
        {isDir && e.changeCount > 0 && e.mark !== 'removed' && <span class="changes">{e.changeCount} change{e.changeCount === 1 ? '' : 's'}</span>}
      </span>
      <span class="c-mode mono">{modeString(e.kind, e.mode)}</span>
      <span class="c-owner mono">
        {e.uid}:{e.gid}
      </span>
      <span class="c-size mono">{e.kind === 'dir' || e.kind === 'file' ? bytes(e.size) : ''}</span>
    </div>
  )
}

function Details({ imageId, entry, onClose }: { imageId: string; entry: TreeEntry; onClose: () => void }) {
  const [history, setHistory] = useState<PathHistory | null>(null)
  useEffect(() => {
    let live = true
    setHistory(null)
    api.path(imageId, entry.path).then(
      (h) => live && setHistory(h),
      () => live && setHistory(null),
    )
    return () => {
      live = false
    }
  }, [imageId, entry.path])
  return (
    <div class="details" data-testid="details">
      <div class="details-head">
        <Name text={entry.path} class="full-path mono" />
        <button class="close" onClick={onClose} title="Close">
          ×
        </button>
      </div>
      <div class="facts">
        <span>{entry.kind}</span>
        <span class="mono">{modeString(entry.kind, entry.mode)}</span>
        <span>
          owner {entry.uid}:{entry.gid}
        </span>
        <span>{bytes(entry.size)}</span>
        {entry.mtime > 0 && <span>mtime {date(new Date(entry.mtime * 1000).toISOString())}</span>}
        {entry.device !== '' && <span>device {entry.device}</span>}
        {entry.xattrs.length > 0 && <span>xattrs: {entry.xattrs.join(', ')}</span>}
      </div>
      {history !== null && (
        <div class="facts">
          History:
          {history.versions.map((v) => (
            <span class={`tag ${v.kind === 'whiteout' ? 'tag-removed' : v.kind === 'opaque' ? 'tag-opaque' : ''}`}>
              layer {v.layer}: {v.kind === 'whiteout' ? 'removed' : v.kind === 'opaque' ? 'made opaque' : `${v.kind}${v.kind === 'file' ? ` ${bytes(v.size)}` : ''}`}
            </span>
          ))}
        </div>
      )}
    </div>
  )
}

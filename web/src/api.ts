// The explorer's JSON API (src/explore-server/handler.ts), by relative URL
// so the page works under any prefix.
import type { DirListing, ExploreImage, ExploreImageSummary, ImageAnalysis, ImageComparison, PathHistory, SearchResult, TreeFilter } from '../../src/explore/types.js'

export type * from '../../src/explore/types.js'

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

async function get<T>(path: string, params: Record<string, string | number | boolean | undefined> = {}): Promise<T> {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== false && v !== '') q.set(k, v === true ? '1' : String(v))
  const qs = q.toString()
  const res = await fetch(`api/${path}${qs === '' ? '' : `?${qs}`}`, { headers: { Accept: 'application/json' } })
  if (!res.ok) {
    let code = 'HTTP'
    let message = `${res.status} ${res.statusText}`
    try {
      const body = (await res.json()) as { error?: { code: string; message: string } }
      if (body.error !== undefined) ({ code, message } = body.error)
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(res.status, code, message)
  }
  return (await res.json()) as T
}

const img = (id: string): string => `images/${encodeURIComponent(id)}`

export const api = {
  info: () => get<{ root: string; driver: string }>('info'),
  images: () => get<ExploreImageSummary[]>('images'),
  image: (id: string) => get<ExploreImage>(img(id)),
  analysis: (id: string) => get<ImageAnalysis>(`${img(id)}/analysis`),
  dir: (id: string, layer: number, path: string, f: TreeFilter, offset: number, limit: number) =>
    get<DirListing>(`${img(id)}/layers/${layer}/dir`, { path, changes: f.onlyChanges, min: f.minSize, offset, limit }),
  search: (id: string, layer: number, q: string, f: TreeFilter) => get<SearchResult>(`${img(id)}/layers/${layer}/search`, { q, changes: f.onlyChanges, min: f.minSize, limit: 1000 }),
  path: (id: string, path: string) => get<PathHistory>(`${img(id)}/path`, { path }),
  compare: (a: string, b: string) => get<ImageComparison>('compare', { a, b }),
}

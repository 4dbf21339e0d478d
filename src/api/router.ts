/**
 * Route matching: templates compiled to anchored expressions, tried in
 * table order (gorilla/mux's rule in dockerd: the first match wins, so
 * fixed paths are listed before the templates that would swallow them).
 * `{x}` is one segment, `{x*}` one or more (image names hold slashes).
 */
import { ApiError } from './errors.js'
import type { Route } from './types.js'

interface CompiledRoute {
  route: Route
  re: RegExp
  names: string[]
}

export interface RouteMatch {
  route: Route
  params: Record<string, string>
}

function compile(route: Route): CompiledRoute {
  const names: string[] = []
  let re = ''
  let rest = route.path
  while (rest.length > 0) {
    const open = rest.indexOf('{')
    if (open < 0) {
      re += escape(rest)
      break
    }
    const close = rest.indexOf('}', open)
    if (close < 0) throw new Error(`route template "${route.path}" has an unclosed "{"`)
    re += escape(rest.slice(0, open))
    let name = rest.slice(open + 1, close)
    const greedy = name.endsWith('*')
    if (greedy) name = name.slice(0, -1)
    names.push(name)
    re += greedy ? '(.+)' : '([^/]+)'
    rest = rest.slice(close + 1)
  }
  return { route, re: new RegExp(`^${re}$`), names }
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

export class Router {
  readonly #routes: CompiledRoute[]

  constructor(routes: readonly Route[]) {
    this.#routes = routes.map(compile)
  }

  /**
   * The route for `method` and `path` (the path without its version
   * prefix, not yet decoded). undefined when no template matches the path
   * at all; a 405-like miss (the path exists for other methods) is also
   * undefined, as dockerd answers both with 404 `page not found`.
   * Methods match exactly (HEAD routes are listed where dockerd has them).
   */
  match(method: string, path: string): RouteMatch | undefined {
    for (const c of this.#routes) {
      if (c.route.method !== method) continue
      const m = c.re.exec(path)
      if (m === null) continue
      const params: Record<string, string> = {}
      c.names.forEach((name, i) => {
        try {
          params[name] = decodeURIComponent(m[i + 1]!)
        } catch (err) {
          throw new ApiError(400, `invalid escape in the path parameter "${name}"`, { cause: err })
        }
      })
      return { route: c.route, params }
    }
    return undefined
  }
}

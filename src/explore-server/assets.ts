/**
 * The explorer's page: the files Vite builds from web/ at `npm run build`
 * into dist/web/, listed once at start and served from memory. Only files
 * that were listed are ever served, so no request path reaches the disk.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { extname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

/** dist/web, next to dist/src where this module is compiled to. */
export const DEFAULT_ASSETS_DIR = fileURLToPath(new URL('../../web/', import.meta.url))

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
}

export interface Asset {
  body: Buffer
  type: string
  /** Hashed file names (assets/*) never change: they may be cached for good. */
  immutable: boolean
}

/** The built page's files by URL path (`/index.html`, `/assets/index-abc.js`); empty when not built. */
export function loadAssets(dir: string = DEFAULT_ASSETS_DIR): Map<string, Asset> {
  const assets = new Map<string, Asset>()
  if (!existsSync(join(dir, 'index.html'))) return assets
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const path = join(d, name)
      if (statSync(path).isDirectory()) walk(path)
      else {
        const rel = `/${relative(dir, path).split('\\').join('/')}`
        assets.set(rel, { body: readFileSync(path), type: TYPES[extname(name)] ?? 'application/octet-stream', immutable: rel.startsWith('/assets/') })
      }
    }
  }
  walk(dir)
  return assets
}

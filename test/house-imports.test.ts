/**
 * The module layout as docs/architecture.md draws it, held against the code.
 *
 * The doc's module table lists every folder of src/ bottom up, with its
 * surface (`index.ts`, or none for the CLI). This test reads that table
 * and every import of every file under src/ (static imports, `export ...
 * from` and dynamic `import()`, found by TypeScript's own pre-processor)
 * and fails on:
 *  - a folder of src/ the table does not list, or a row naming no folder
 *    (so the doc and the code cannot drift apart);
 *  - a deep import: code in one folder importing a file behind another
 *    folder's surface (`../layer/types.js` instead of `../layer/index.js`);
 *  - an import of a folder listed below the importer (the layering), or of
 *    a folder with no surface.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

/** The repository: this file runs as dist/test/house-imports.test.js. */
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

interface ModuleRow {
  /** Path below src/, without slashes at the ends: `layer`, `transport/registry`. */
  folder: string
  /** False for a folder nothing may import (the CLI). */
  hasSurface: boolean
  /** Position in the table (bottom up). */
  rank: number
}

/** The rows of the module table (the first table under "## Modules"). */
function parseModuleTable(doc: string): ModuleRow[] {
  const start = doc.search(/^## Modules/m)
  assert.ok(start >= 0, 'docs/architecture.md has no "## Modules" section')
  const rows: ModuleRow[] = []
  for (const line of doc.slice(start).split('\n').slice(1)) {
    if (line.startsWith('## ')) break
    const m = /^\|\s*`src\/([^`]+?)\/?`\s*\|\s*([^|]+?)\s*\|/.exec(line)
    if (m === null) continue
    rows.push({ folder: m[1]!, hasSurface: m[2]!.startsWith('`index.ts`'), rank: rows.length })
  }
  assert.ok(rows.length > 0, 'the module table of docs/architecture.md has no `src/...` rows')
  return rows
}

async function tsFiles(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...(await tsFiles(p)))
    else if (e.name.endsWith('.ts')) out.push(p)
  }
  return out
}

/** The module (row) a path below src/ belongs to: the longest row that contains it. */
function owner(rows: ModuleRow[], pathBelowSrc: string): ModuleRow | undefined {
  let best: ModuleRow | undefined
  for (const r of rows) {
    if (pathBelowSrc === r.folder || pathBelowSrc.startsWith(r.folder + '/')) {
      if (best === undefined || r.folder.length > best.folder.length) best = r
    }
  }
  return best
}

/** Every violation of the layout in the tree at `root` (src/ and docs/architecture.md), one line each. */
async function checkLayout(root: string): Promise<string[]> {
  const rows = parseModuleTable(await readFile(join(root, 'docs', 'architecture.md'), 'utf8'))
  const src = join(root, 'src')
  const problems: string[] = []

  const folders = (await readdir(src, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name)
  for (const f of folders) {
    if (!rows.some((r) => r.folder === f)) problems.push(`src/${f}/ is not in the module table of docs/architecture.md`)
  }
  for (const r of rows) {
    const files = await readdir(join(src, r.folder)).catch(() => undefined)
    if (files === undefined) problems.push(`the module table names src/${r.folder}/, which does not exist`)
    else if (r.hasSurface && !files.includes('index.ts')) problems.push(`src/${r.folder}/ has no index.ts, its surface in the module table`)
  }

  for (const file of await tsFiles(src)) {
    const from = relative(src, file).split(sep).join('/')
    if (!from.includes('/')) continue // src/index.ts, the package entry: re-exports surfaces (checked below as any other importer would be)
    const fromRow = owner(rows, from)
    if (fromRow === undefined) continue // reported above as a folder missing from the table
    const text = await readFile(file, 'utf8')
    for (const ref of ts.preProcessFile(text, true, true).importedFiles) {
      if (!ref.fileName.startsWith('.')) continue
      const target = relative(src, resolve(dirname(file), ref.fileName)).split(sep).join('/')
      if (target.startsWith('..')) {
        problems.push(`${from} imports "${ref.fileName}", outside src/`)
        continue
      }
      const toRow = owner(rows, target)
      if (toRow === undefined || toRow === fromRow) continue
      // Inside one top-level folder (transport and its registry), files see each other's files.
      if (toRow.folder.split('/')[0] === fromRow.folder.split('/')[0] && !toRow.folder.includes('/')) continue
      if (!toRow.hasSurface) problems.push(`${from} imports "${ref.fileName}": src/${toRow.folder}/ has no surface, nothing may import it`)
      else if (target !== `${toRow.folder}/index.js`) problems.push(`${from} imports "${ref.fileName}", a file behind src/${toRow.folder}/'s surface: import "${toRow.folder}/index.js"`)
      else if (toRow.rank > fromRow.rank && toRow.folder.split('/')[0] !== fromRow.folder.split('/')[0]) {
        problems.push(`${from} imports src/${toRow.folder}/, listed after src/${fromRow.folder}/ in the module table (a folder imports only the folders listed before it)`)
      }
    }
  }
  return problems
}

test('every import between src folders goes through the surface docs/architecture.md lists, bottom up', async () => {
  const problems = await checkLayout(REPO)
  assert.deepEqual(problems, [], `\n${problems.join('\n')}`)
})

test('the check fails on a deep import, an unlisted folder, a missing folder and an upward import', async () => {
  const root = await mkdtemp(join(tmpdir(), 'strata-house-'))
  try {
    await mkdir(join(root, 'docs'))
    await writeFile(
      join(root, 'docs', 'architecture.md'),
      [
        '# x',
        '## Modules, bottom up',
        '| folder | surface | job |',
        '|---|---|---|',
        '| `src/low/` | `index.ts` | below |',
        '| `src/high/` | `index.ts` | above |',
        '| `src/high/sub/` | `index.ts` | a sub-surface |',
        '| `src/gone/` | `index.ts` | not there |',
        '| `src/cli/` | none | the bin |',
        '## Next',
        '| `src/ignored/` | `index.ts` | after the table |',
      ].join('\n'),
    )
    const files: Record<string, string> = {
      'src/low/index.ts': "export * from './a.js'\n",
      'src/low/a.ts': "export const a = 1\nexport { h } from '../high/index.js'\n",
      'src/high/index.ts': "export const h = 1\n",
      'src/high/b.ts': "import { a } from '../low/a.js'\nimport { s } from './sub/index.js'\nexport const b = [a, s]\n",
      'src/high/sub/index.ts': "export const s = 1\nexport { x } from '../../unlisted/index.js'\n",
      'src/high/sub/c.ts': "export const c = await import('../../low/index.js')\nexport { b } from '../b.js'\n",
      'src/unlisted/index.ts': "export const x = 1\n",
      'src/high/d.ts': "import '../cli/main.js'\n",
      'src/cli/main.ts': "import { s } from '../high/sub/index.js'\nconsole.log(s)\n",
    }
    for (const [p, text] of Object.entries(files)) {
      await mkdir(dirname(join(root, p)), { recursive: true })
      await writeFile(join(root, p), text)
    }
    const problems = await checkLayout(root)
    assert.deepEqual(problems.sort(), [
      'low/a.ts imports src/high/, listed after src/low/ in the module table (a folder imports only the folders listed before it)',
      `high/b.ts imports "../low/a.js", a file behind src/low/'s surface: import "low/index.js"`,
      'high/d.ts imports "../cli/main.js": src/cli/ has no surface, nothing may import it',
      'the module table names src/gone/, which does not exist',
      'src/unlisted/ is not in the module table of docs/architecture.md',
    ].sort())
  } finally {
    await rm(root, { recursive: true, force: true })
  }
})

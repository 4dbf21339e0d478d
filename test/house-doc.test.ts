/**
 * docs/architecture.md held against the code it describes, so the design
 * doc cannot quietly go stale:
 *  - the graph driver block names every member of GraphDriver and
 *    DriverFactory in src/graphdriver/types.ts (read with TypeScript's
 *    parser), and nothing the interface does not have;
 *  - the data-root drawing names every file and directory name the code
 *    declares as a constant for the data root;
 *  - the CLI block names every verb src/cli/main.ts dispatches (its VERBS
 *    table and CONTAINER_VERBS).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { CONFIG_FILE, CONTAINERS_DIR, HOSTCONFIG_FILE, JOURNAL_FILE, LAYER_FILES, MOUNT_FILES, MIGRATION_DIR, MIGRATION_JOURNAL, MIGRATION_LOCK } from '../src/index.js'
import { DATA_ROOT_LOCK_FILE, TEMP_PREFIX } from '../src/fs/index.js'
import * as overlay2 from '../src/graphdriver/overlay2/layout.js'
import * as aufs from '../src/graphdriver/aufs/layout.js'
import * as devmapper from '../src/graphdriver/devicemapper/layout.js'
import * as vfs from '../src/graphdriver/vfs/layout.js'
import { WRITE_SET_PREFIX, REMOVING_MOUNT_PREFIX, REMOVING_SUFFIX } from '../src/layer/paths.js'

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

async function doc(): Promise<string> {
  return readFile(join(REPO, 'docs', 'architecture.md'), 'utf8')
}

/** The body of the first fenced block after the heading `## <title>`. */
function sectionBlock(text: string, title: string): string {
  const start = text.indexOf(`\n## ${title}`)
  assert.ok(start >= 0, `docs/architecture.md has no "## ${title}" section`)
  const m = /```[a-z]*\n([\s\S]*?)```/.exec(text.slice(start))
  assert.ok(m !== null, `the "## ${title}" section has no code block`)
  return m[1]!
}

/** Member names of interface `name` in a TypeScript source. */
function interfaceMembers(source: string, name: string): string[] {
  const sf = ts.createSourceFile('types.ts', source, ts.ScriptTarget.ES2022, true)
  const decl = sf.statements.find((s): s is ts.InterfaceDeclaration => ts.isInterfaceDeclaration(s) && s.name.text === name)
  assert.ok(decl !== undefined, `src/graphdriver/types.ts has no interface ${name}`)
  return decl.members.map((m) => (m.name !== undefined && ts.isIdentifier(m.name) ? m.name.text : '')).filter((n) => n !== '')
}

/** Member names the doc's block gives interface `name` (`foo(`, `foo?(`, `readonly foo:`). */
function docMembers(block: string, name: string): string[] {
  const m = new RegExp(`interface ${name} \\{([\\s\\S]*?)\\n\\}`).exec(block)
  assert.ok(m !== null, `the graph driver block has no interface ${name}`)
  return [...m[1]!.matchAll(/^\s+(?:readonly\s+)?([A-Za-z]+)\??[(:]/gm)].map((x) => x[1]!)
}

test('the graph driver block has every member of GraphDriver and DriverFactory, and no other', async () => {
  const types = await readFile(join(REPO, 'src', 'graphdriver', 'types.ts'), 'utf8')
  const block = sectionBlock(await doc(), 'The graph driver')
  for (const name of ['GraphDriver', 'DriverFactory']) {
    assert.deepEqual(docMembers(block, name).sort(), interfaceMembers(types, name).sort(), `interface ${name} in docs/architecture.md differs from src/graphdriver/types.ts`)
  }
})

test('the data-root drawing names every file the code declares for the data root', async () => {
  const drawing = sectionBlock(await doc(), 'The data root')
  const names = [
    DATA_ROOT_LOCK_FILE,
    TEMP_PREFIX,
    JOURNAL_FILE,
    CONTAINERS_DIR,
    CONFIG_FILE,
    HOSTCONFIG_FILE,
    MIGRATION_DIR,
    MIGRATION_JOURNAL,
    MIGRATION_LOCK,
    ...Object.values(LAYER_FILES),
    ...Object.values(MOUNT_FILES),
    WRITE_SET_PREFIX,
    REMOVING_MOUNT_PREFIX,
    REMOVING_SUFFIX,
    overlay2.LINK_DIR,
    overlay2.DIFF_DIR,
    overlay2.WORK_DIR,
    overlay2.MERGED_DIR,
    overlay2.LINK_FILE,
    overlay2.LOWER_FILE,
    overlay2.COMMITTED_FILE,
    aufs.DIFF_DIR,
    aufs.LAYERS_DIR,
    aufs.MNT_DIR,
    aufs.FUSE_WORK_DIR,
    devmapper.BASE_FILE,
    devmapper.DEVICESET_FILE,
    devmapper.TRANSACTION_FILE,
    devmapper.LOCK_FILE,
    vfs.LAYERS_DIR,
    'repositories.json',
    'imagedb',
    'lastUpdated',
    'diffid-by-digest',
    'v2metadata-by-diffid',
    'tmp/',
  ]
  const missing = names.filter((n) => !new RegExp(`(^|[\\s/{,(>])${n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'm').test(drawing))
  assert.deepEqual(missing, [], `docs/architecture.md's data-root drawing does not name: ${missing.join(', ')}`)
})

test('the CLI block names every verb main.ts dispatches', async () => {
  const main = await readFile(join(REPO, 'src', 'cli', 'main.ts'), 'utf8')
  const table = /const VERBS[^=]*= \{\n([\s\S]*?)\n\}/.exec(main)
  assert.ok(table !== null, 'main.ts has no VERBS table')
  const verbs = new Set([...table[1]!.matchAll(/^\s+'?([a-z][a-z-]*)'?:/gm)].map((m) => m[1]!))
  const standalone = /CONTAINER_VERBS = new Set\(\[([^\]]*)\]\)/.exec(main)
  assert.ok(standalone !== null, 'main.ts has no CONTAINER_VERBS')
  for (const m of standalone[1]!.matchAll(/'([a-z]+)'/g)) verbs.add(m[1]!)
  assert.ok(verbs.size > 20, `read only ${verbs.size} verbs from main.ts`)
  const block = sectionBlock(await doc(), 'The CLI')
  const missing = [...verbs].filter((v) => !new RegExp(`(strata |\\| )${v}\\b`).test(block))
  assert.deepEqual(missing, [], `docs/architecture.md's CLI block does not name: ${missing.join(', ')}`)
})

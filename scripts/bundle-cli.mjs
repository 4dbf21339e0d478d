/**
 * The part both launchers share: `file`, a bundle beside the launcher, as a
 * vm.Script with the V8 code cache kept in `file`.cache (the sha256 of V8's
 * data, then the data; checked before V8 sees it, see LAUNCHER), and
 * `writeCache()`, which writes the cache of what has been compiled so far
 * by temp + rename (`tmpSuffix`, a JS expression added to the temp name
 * after the pid, keeps the names of a process's concurrent writers apart).
 */
function cachedScript(bundle, tmpSuffix) {
  return `const { createHash } = require('node:crypto')
const { readFileSync, renameSync, writeFileSync, unlinkSync } = require('node:fs')
const { join } = require('node:path')
const { Script } = require('node:vm')

const file = join(__dirname, '${bundle}')
const cacheFile = file + '.cache'
const sha256 = (data) => createHash('sha256').update(data).digest()
let cachedData
try {
  const kept = readFileSync(cacheFile)
  const data = kept.subarray(32)
  if (kept.length > 32 && sha256(data).equals(kept.subarray(0, 32))) cachedData = data
} catch {
  // no cache yet: compiled from source, and the cache written later (below)
}
const source = readFileSync(file, 'utf8')
const script = new Script('(function (exports, require, module, __filename, __dirname) {' + source + '\\n})', { filename: file, cachedData })
function writeCache() {
  // Best effort: a read-only install runs without a cache.
  const tmp = cacheFile + '.tmp-' + process.pid${tmpSuffix === undefined ? '' : ` + ${tmpSuffix}`}
  try {
    const data = script.createCachedData()
    writeFileSync(tmp, Buffer.concat([sha256(data), data]))
    renameSync(tmp, cacheFile)
  } catch {
    try {
      unlinkSync(tmp)
    } catch {}
  }
}
`
}

/**
 * Builds the `strata` command users run (package.json "bin"): the CLI and
 * the apply worker bundled by esbuild from tsc's output into
 * dist/src/bundle/, plus a launcher that compiles the bundle with a V8 code
 * cache. Run after `tsc -p .` (npm run build, npm test and npm run bench do).
 *
 * Why: unbundled, every command spent ~0.15 s of CPU before any work
 * resolving, reading and compiling ~150 ES modules (node --cpu-prof:
 * compileSourceTextModule, module resolution and file reads were most of
 * it). One CommonJS file with a code cache skips resolution and most of
 * the compiling; Node 20 has no module.enableCompileCache (22+), so the
 * launcher uses vm.Script's cachedData.
 *
 * The layout keeps the relative paths the sources use from import.meta.url
 * (dist/src/X/file.js): ../../web/ (the explorer page), ../../../package.json
 * (the version), ./apply-worker.js (the worker next to its caller) and
 * ./monitor/main.js (the container monitor, spawned by start), so
 * the bundles sit at the same depth, dist/src/bundle/, with a package.json
 * that makes their .js files CommonJS.
 *
 * koffi and zstd-napi stay outside (native addons, loaded from node_modules
 * by the code that calls them).
 */
import { build } from 'esbuild'
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const repo = join(dirname(fileURLToPath(import.meta.url)), '..')
const out = join(repo, 'dist/src/bundle')
// Built beside and renamed into place, so a test or a user running the
// command meanwhile sees the old bundle or the new, never half of one.
const tmp = `${out}.tmp-${process.pid}`

const LAUNCHER = `#!/usr/bin/env node
'use strict'
// The strata command: runs cli.js (the bundled CLI) compiled with a V8
// code cache kept beside it (cli.js.cache), written by the first run that
// had none, or whose cache was damaged or rejected by this Node (another
// version). Made by scripts/bundle-cli.mjs.
//
// cli.js.cache is the sha256 of V8's data, then the data. V8 checks that
// the data belongs to this source and this V8, not that its bytes are
// intact: damaged data past its header stops the process with a fatal
// error in the deserializer, on every run. So the digest is checked here
// and damaged data is not given to V8 at all.
${cachedScript('cli.js')}const warmup = process.env.STRATA_CODE_CACHE_WARMUP
if (warmup !== undefined) {
  // Build time only (scripts/bundle-cli.mjs): runs each command line of the
  // JSON list in this one process, then writes the cache. V8's cache holds
  // the functions compiled by then, so the verbs run here (images, ps,
  // inspect...) start without compiling their code (~6 ms of CPU against a
  // cache made by --help alone).
  const fn = script.runInThisContext()
  void (async () => {
    for (const argv of JSON.parse(warmup)) {
      process.argv = [process.argv[0], file, ...argv]
      const mod = { exports: {} }
      fn(mod.exports, require, mod, file, __dirname)
      await mod.exports.done
    }
    process.exitCode = 0
    writeCache()
  })()
} else {
  if (cachedData === undefined || script.cachedDataRejected === true) process.once('exit', writeCache)
  const mod = { exports: {} }
  script.runInThisContext()(mod.exports, require, mod, file, __dirname)
}
`

/**
 * The apply worker's launcher (dist/src/bundle/apply-worker.js, the file
 * apply-offthread.ts starts): runs the worker bundle (apply-worker-main.js)
 * compiled with its own code cache, as strata.js runs cli.js. Every load or
 * pull starts a worker per core, and each compiled the bundle from source
 * and every function it ran on first call (~10-20 ms of CPU a worker).
 * The cache is written by the build (scripts/bundle-cli.mjs applies a small
 * layer through it) and again by any worker that had none or had it
 * rejected, once its first apply is done (a worker is terminated, not
 * ended, so there is no exit to write it at).
 */
const WORKER_LAUNCHER = `'use strict'
// Made by scripts/bundle-cli.mjs: runs apply-worker-main.js with the V8 code
// cache beside it (apply-worker-main.js.cache: sha256 of the data, then the
// data, checked before V8 sees it, as strata.js does for cli.js).
const { parentPort, threadId } = require('node:worker_threads')
${cachedScript('apply-worker-main.js', "'-' + threadId")}if (cachedData === undefined || script.cachedDataRejected === true) {
  // After the first apply, so that the functions it compiled are in the
  // cache; before its 'done' goes out, after which the worker may be
  // terminated at any moment.
  const post = parentPort.postMessage
  parentPort.postMessage = function (msg, transfer) {
    if (msg !== null && typeof msg === 'object' && msg.t === 'done') {
      parentPort.postMessage = post
      writeCache()
    }
    post.call(this, msg, transfer)
  }
}
const mod = { exports: {} }
script.runInThisContext()(mod.exports, require, mod, file, __dirname)
`

/**
 * The builtins a command may well not use, loaded on first use in cli.js.
 * A module's imports run when the module is initialised, and the modules a
 * verb reaches import crypto, zlib, child_process, worker_threads...
 * whether or not this run calls them: ~70 more builtin modules compiled
 * (node -e of their requires: ~7 ms of CPU on this machine). esbuild turns
 * `import { createHash } from 'node:crypto'` into
 * `import_node_crypto = require("node:crypto")` and every use into
 * `(0, import_node_crypto.createHash)(...)`, a property read at the call:
 * so the require becomes a proxy that requires the module on its first
 * property read (node:module: only koffi's and zstd-napi's loaders call
 * createRequire, and loading it loads the ESM loader's modules, ~0.5 ms).
 * fs, path, os, events... are left as they are (Node's own
 * start loads them, or they are cheap; fs calls are hot in extraction).
 */
const LAZY_BUILTINS = ['crypto', 'zlib', 'child_process', 'worker_threads', 'readline', 'readline/promises', 'net', 'http', 'https', 'stream', 'stream/promises', 'v8', 'tty', 'timers/promises', 'string_decoder', 'dgram', 'module']
const LAZY_REQUIRE = `var __strataLazyRequire = (id) => {
  let m;
  const load = () => m ??= require(id);
  return new Proxy({}, {
    get: (_, key) => load()[key],
    has: (_, key) => key in load(),
    ownKeys: () => Reflect.ownKeys(load()),
    getOwnPropertyDescriptor: (_, key) => {
      const d = Reflect.getOwnPropertyDescriptor(load(), key);
      if (d !== undefined) d.configurable = true;
      return d;
    },
  });
};
`
function lazyBuiltins(source) {
  const pattern = new RegExp(`\\brequire\\("node:(${LAZY_BUILTINS.join('|')})"\\)`, 'g')
  let count = 0
  const out = source.replace(pattern, (_, id) => {
    count++
    return `__strataLazyRequire("node:${id}")`
  })
  if (count === 0) throw new Error('bundle-cli: no builtin require found to make lazy (has esbuild changed its output?)')
  // After the banner's "use strict" line (a directive only as the first statement).
  return out.replace(/^("use strict";\n)/, `$1${LAZY_REQUIRE}`)
}

/**
 * cli.js with every non-ASCII character written as a \\uXXXX escape (esbuild
 * escapes strings, not comments or regular expression literals: a µ in a
 * regex, an arrow in a comment). Read as UTF-8, an ASCII file becomes a
 * one-byte string by a fast path: 1 ms for the 1.3 MB bundle against 3-4 ms
 * to decode it into a two-byte string when a single character is not
 * ASCII, on every command. The escape means the same character in a string,
 * template, regex or identifier, and nothing in a comment.
 */
function asciiOnly(source) {
  const out = source.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  if (/String\.raw/.test(out) && out !== source) throw new Error('bundle-cli: String.raw in the bundle: escaping non-ASCII would change a raw template')
  return out
}

rmSync(tmp, { recursive: true, force: true })
mkdirSync(tmp, { recursive: true })
try {
  await build({
    absWorkingDir: repo,
    // The container monitor (spawned by start, from ./monitor/main.js beside its caller) is bundled too.
    entryPoints: { cli: 'dist/src/cli/main.js', 'apply-worker': 'dist/src/archive/apply-worker.js', 'monitor/main': 'dist/src/container/monitor/main.js' },
    outdir: tmp,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['koffi', 'zstd-napi'],
    // Every import.meta.url becomes the bundle's own URL (see the layout above).
    define: { 'import.meta.url': '__strataImportMetaUrl' },
    banner: { js: '"use strict";\nvar __strataImportMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
    logLevel: 'warning',
  })
  // The launcher wraps cli.js in a function: main.ts's #! line must go.
  const cli = join(tmp, 'cli.js')
  writeFileSync(cli, asciiOnly(lazyBuiltins(readFileSync(cli, 'utf8').replace(/^#!.*\n/, ''))))
  // The worker bundle runs behind its launcher, under the name its callers start.
  const workerMain = join(tmp, 'apply-worker-main.js')
  renameSync(join(tmp, 'apply-worker.js'), workerMain)
  writeFileSync(workerMain, asciiOnly(lazyBuiltins(readFileSync(workerMain, 'utf8'))))
  writeFileSync(join(tmp, 'apply-worker.js'), WORKER_LAUNCHER)
  writeFileSync(join(tmp, 'package.json'), '{ "type": "commonjs" }\n')
  writeFileSync(join(tmp, 'strata.js'), LAUNCHER, { mode: 0o755 })
  const old = `${out}.old-${process.pid}`
  try {
    renameSync(out, old)
  } catch {
    // first build
  }
  renameSync(tmp, out)
  rmSync(old, { recursive: true, force: true })
} catch (err) {
  rmSync(tmp, { recursive: true, force: true })
  throw err
}
// The code cache is written by one process that runs the common read-only
// verbs on a scratch root holding one image (an empty layer), so the first
// user command starts warm too (see the launcher's STRATA_CODE_CACHE_WARMUP).
const warmRoot = mkdtempSync(join(tmpdir(), 'strata-cache-warmup-'))
try {
  const emptyTar = join(warmRoot, 'empty.tar')
  writeFileSync(emptyTar, Buffer.alloc(1024))
  const g = ['--root', join(warmRoot, 'root'), '-s', 'vfs']
  const runs = [
    ['--help'],
    [...g, 'import', '-q', emptyTar, 'warm:1'],
    [...g, 'version'],
    [...g, 'images'],
    [...g, 'images', '--format', '{{json .}}'],
    [...g, 'inspect', 'warm:1'],
    [...g, 'history', 'warm:1'],
    [...g, 'ps', '-a'],
    [...g, 'inspect', 'nothing-here'],
  ]
  execFileSync(process.execPath, [join(out, 'strata.js')], { stdio: 'ignore', env: { ...process.env, STRATA_CODE_CACHE_WARMUP: JSON.stringify(runs) } })
} finally {
  rmSync(warmRoot, { recursive: true, force: true })
}

// The worker's code cache, written by the worker itself after its first
// apply (see WORKER_LAUNCHER): one small layer (directories, files under
// and over the sizes where CRC-64 changes path, a symlink, a hardlink, PAX
// times: what every layer has) applied into a scratch directory.
await warmApplyWorker()

async function warmApplyWorker() {
  const { encodeHeader, padding, END_OF_ARCHIVE } = await import('../dist/src/archive/index.js')
  const { Worker } = await import('node:worker_threads')
  const dir = mkdtempSync(join(tmpdir(), 'strata-worker-warmup-'))
  try {
    const mtime = { sec: 1700000000, nsec: 123456789 }
    const parts = []
    const add = (h, content) => {
      parts.push(encodeHeader({ mode: 0o644, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, mtime, atime: mtime, ...h, ...(content ? { size: content.length } : {}) }))
      if (content) parts.push(content, padding(content.length))
    }
    add({ name: './', type: 'dir', mode: 0o755 })
    for (const d of ['etc', 'usr', 'usr/lib', 'var']) {
      add({ name: `./${d}/`, type: 'dir', mode: 0o755 })
      for (let i = 0; i < 40; i++) add({ name: `./${d}/f${i}`, type: 'file' }, Buffer.alloc(i % 2 === 0 ? 300 : 9000, i))
      add({ name: `./${d}/link`, type: 'symlink', linkname: 'f0' })
      add({ name: `./${d}/hard`, type: 'hardlink', linkname: `./${d}/f1` })
    }
    parts.push(END_OF_ARCHIVE)
    const tar = join(dir, 'layer.tar')
    writeFileSync(tar, Buffer.concat(parts))
    const target = join(dir, 'target')
    mkdirSync(target)
    const worker = new Worker(join(out, 'apply-worker.js'))
    try {
      await new Promise((resolve, reject) => {
        worker.on('error', reject)
        worker.on('exit', (code) => reject(new Error(`bundle-cli: the warm-up apply worker exited (code ${code})`)))
        worker.on('message', (msg) => {
          if (msg.t === 'done') resolve()
          else if (msg.t === 'failed') reject(new Error(`bundle-cli: the warm-up apply failed: ${msg.error.message}`))
        })
        worker.postMessage({ t: 'start', id: 1, target, whiteouts: 'overlay', tarSplit: true, file: { path: tar, start: 0, progress: false } })
      })
    } finally {
      await worker.terminate()
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * strata's template engine against Go's own: the peer program
 * test/peers/go-template (text/template, fmt, encoding/json and
 * text/tabwriter of Debian's Go, with docker's template functions written
 * again as docker writes them) runs the same templates over the same JSON,
 * and the outputs and error texts must be equal byte for byte.
 *
 * Three sets: the case table (helpers/template-cases.ts, minus the cases
 * where current Go differs from Go 1.19, checked against docker 28 in
 * format-docker-peer.test.ts); thousands of random floats and integers
 * through every fmt verb and flag combination docker users write; random
 * tables through tabwriter.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, describe, test, type TestContext } from 'node:test'
import { DOCKER_FUNCS, INT64, sliceOf, structOf, tabwrite, Template, TemplateError, UINT8, type GoType } from '../src/format/index.js'
import { requireTool, run } from './helpers/peers.js'
import { runCase, TEMPLATE_CASES, type TemplateCase } from './helpers/template-cases.js'

const PEER_SOURCE = fileURLToPath(new URL('../../test/peers/go-template/main.go', import.meta.url))

interface PeerCase {
  template: string
  data: unknown
  /** The JSON text Go decodes, when `data` cannot say it exactly (int64s beyond 2^53 as bigints). */
  json?: string
  type?: GoType | null
  useNumber?: boolean
  missingKey?: string
  docker?: boolean
  tabwriter?: boolean
}

interface PeerResult {
  out: string
  err?: string
  phase?: string
}

let workDir: string | undefined
let peerBinary: string | undefined

/** Builds the Go peer once (Go's build cache in a private directory); undefined when Go is missing. */
async function buildPeer(t: TestContext): Promise<string | undefined> {
  if (!requireTool(t, 'go')) return undefined
  if (peerBinary !== undefined) return peerBinary
  workDir = mkdtempSync(join(tmpdir(), 'strata-test-gotemplate-'))
  const binary = join(workDir, 'go-template-peer')
  const env = { ...process.env, HOME: workDir, GOCACHE: join(workDir, 'cache'), GOPATH: join(workDir, 'gopath'), GO111MODULE: 'off', GOFLAGS: '', GOTOOLCHAIN: 'local' }
  await run('go', ['build', '-o', binary, PEER_SOURCE], { env, cwd: workDir })
  peerBinary = binary
  return binary
}

async function runPeer(binary: string, cases: PeerCase[]): Promise<PeerResult[]> {
  const input = cases.map(({ json, data, ...rest }) => `{"data":${json ?? JSON.stringify(data)},${JSON.stringify({ type: null, ...rest }).slice(1)}`)
  const { stdout } = await run(binary, [], { input: Buffer.from(`[${input.join(',')}]`) })
  return JSON.parse(stdout.toString('utf8')) as PeerResult[]
}

function strataRun(c: PeerCase): PeerResult {
  try {
    const t = Template.parse(c.template, c.docker === true ? { funcs: DOCKER_FUNCS } : {})
    // What Go reads is the JSON text: run over the same (-0 is 0 there, as an int64 beyond 2^53 is exact).
    const data = c.json !== undefined ? c.data : (JSON.parse(JSON.stringify(c.data)) as unknown)
    const out = t.execute(data, c.type === undefined || c.type === null ? {} : { type: c.type })
    return { out: c.tabwriter === true ? tabwrite(out, { minWidth: 10, tabWidth: 1, padding: 3, padChar: ' ' }) : out }
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err
    return { out: err.output, err: err.message }
  }
}

/** A deterministic pseudo-random sequence (xorshift32), so a failure can be reproduced. */
function random(seed: number): () => number {
  let x = seed
  return () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) / 2 ** 32
  }
}

after(() => {
  if (workDir !== undefined) rmSync(workDir, { recursive: true, force: true })
})

describe('Go text/template peer', () => {
  test('the case table prints what Go prints, byte for byte', async (t) => {
    const binary = await buildPeer(t)
    if (binary === undefined) return
    const cases = TEMPLATE_CASES.filter((c) => c.modernGo === undefined)
    const toPeer = (c: TemplateCase): PeerCase => ({
      template: c.template,
      data: c.data,
      type: c.type ?? null,
      useNumber: c.useNumber ?? false,
      missingKey: c.missingKey ?? '',
      docker: c.docker ?? false,
    })
    const results = await runPeer(binary, cases.map(toPeer))
    const mismatches: string[] = []
    cases.forEach((c, i) => {
      const go = results[i]!
      const ours = runCase(c)
      if (go.out !== ours.out || (go.err ?? undefined) !== ours.err) mismatches.push(`${JSON.stringify(c.template)}\n  go:     ${JSON.stringify(go)}\n  strata: ${JSON.stringify(ours)}`)
      // The recorded expectation is Go's too: a change in the peer shows here.
      if (go.out !== c.out || (go.err ?? undefined) !== c.err) mismatches.push(`${JSON.stringify(c.template)}: the table's expectation is not what Go prints now: ${JSON.stringify(go)}`)
    })
    assert.deepEqual(mismatches, [], `${mismatches.length} of ${cases.length} cases differ`)
    assert.ok(cases.length > 300)
  })

  test('random floats through every fmt float verb, flag, width and precision', async (t) => {
    const binary = await buildPeer(t)
    if (binary === undefined) return
    const next = random(0x5eed)
    const floats: number[] = [0, 1, -1, 0.5, 1.5, 2.5, 0.125, 1e21, 1e20, 1e-7, 1e-6, 123456, 1234567, 5e-324, 1.7976931348623157e308, 2 ** 53, 0.1, 0.2, 0.3]
    for (let i = 0; i < 1500; i++) {
      const kind = i % 4
      const mant = next() * 10
      const exp = Math.floor(next() * 40) - 20
      let f = kind === 0 ? mant * 10 ** exp : kind === 1 ? Math.round(next() * 1e6) / 100 : kind === 2 ? Math.round(next() * 2 ** 40) : (next() - 0.5) * 10 ** Math.floor(next() * 300 - 150)
      if (next() < 0.3) f = -f
      floats.push(f)
    }
    const verbs = '%v|%e|%E|%.3e|%f|%.2f|%.0f|%g|%G|%.4g|%.10g|%#g|%#.3g|%+.1e|% .3f|%08.3f|%-12.2e|%12.4g|%x|%.3x|%X|%b|%#v|%.15f|%.17g'
    const cases: PeerCase[] = [
      { template: `{{range .}}{{printf "${verbs}" ${Array(25).fill('.').join(' ')}}}\n{{end}}`, data: floats },
      { template: '{{range .}}{{json .}} {{.}}\n{{end}}', data: floats, docker: true },
      { template: '{{range .}}{{printf "%v %.3f %g %e" . . . .}}\n{{end}}', data: floats.map((f) => Math.fround(f)).filter((f) => Number.isFinite(f)), type: sliceOf({ kind: 'float', name: 'float32', bits: 32 }) },
    ]
    const results = await runPeer(binary, cases)
    cases.forEach((c, i) => {
      const ours = strataRun(c)
      const goLines = results[i]!.out.split('\n')
      const ourLines = ours.out.split('\n')
      const bad = goLines.map((g, k) => (g === ourLines[k] ? '' : `${JSON.stringify(c.data instanceof Array ? c.data[k] : '')}\n  go:     ${g}\n  strata: ${ourLines[k]}`)).filter((s) => s !== '')
      assert.deepEqual(bad.slice(0, 10), [], `${bad.length} values format differently (case ${i})`)
      assert.equal(results[i]!.err, undefined)
      assert.equal(ours.err, undefined)
    })
  })

  test('random integers through the integer verbs', async (t) => {
    const binary = await buildPeer(t)
    if (binary === undefined) return
    const next = random(0xabcdef)
    const ints: string[] = ['0', '1', '-1', '9223372036854775807', '-9223372036854775808', '255', '65', '128512']
    for (let i = 0; i < 800; i++) {
      const v = BigInt(Math.floor(next() * 2 ** 31)) * BigInt(Math.floor(next() * 2 ** 31)) >> BigInt(Math.floor(next() * 60))
      ints.push((next() < 0.3 ? -v : v).toString())
    }
    const verbs = '%d|%5d|%-5d|%05d|%+d|% d|%x|%X|%#x|%o|%O|%#o|%b|%#b|%.3d|%8.3d|%U|%#U|%c|%q|%v|%e|%s|%t'
    const type = structOf([
      { name: 'I', type: INT64 },
      { name: 'U', type: UINT8 },
    ])
    const data = ints.map((s) => ({ I: BigInt(s), U: BigInt(s) & 255n }))
    const json = `[${ints.map((s) => `{"I":${s},"U":${(BigInt(s) & 255n).toString()}}`).join(',')}]`
    const cases: PeerCase[] = [
      { template: `{{range .}}{{printf "${verbs}" ${Array(24).fill('.I').join(' ')}}}|{{printf "%d %x %c %v" .U .U .U .U}}\n{{end}}`, data, json, type: sliceOf(type) },
    ]
    const results = await runPeer(binary, cases)
    const ours = strataRun(cases[0]!)
    const goLines = results[0]!.out.split('\n')
    const ourLines = ours.out.split('\n')
    const bad = goLines.map((g, k) => (g === ourLines[k] ? '' : `${ints[k]}\n  go:     ${g}\n  strata: ${ourLines[k]}`)).filter((s) => s !== '')
    assert.deepEqual(bad.slice(0, 10), [], `${bad.length} values format differently`)
    assert.equal(results[0]!.err, undefined)
  })

  test('random tables through text/tabwriter lay out as Go lays them out', async (t) => {
    const binary = await buildPeer(t)
    if (binary === undefined) return
    const next = random(42)
    const words = ['', 'a', 'bb', 'ccc', 'dddddddddd', 'eeeeeeeeeeeeeeeeeeeeee', 'é', 'x y', 'ünïcödé wörd']
    const cases: PeerCase[] = []
    for (let k = 0; k < 60; k++) {
      const lines: string[] = []
      const n = 1 + Math.floor(next() * 8)
      for (let l = 0; l < n; l++) {
        const cells = Math.floor(next() * 5)
        const parts: string[] = []
        for (let c = 0; c < cells; c++) parts.push(words[Math.floor(next() * words.length)]!)
        lines.push(parts.join('\t') + (next() < 0.3 ? '\t' : ''))
      }
      cases.push({ template: '{{.}}', data: lines.join('\n') + (next() < 0.5 ? '\n' : ''), tabwriter: true })
    }
    const results = await runPeer(binary, cases)
    cases.forEach((c, i) => assert.equal(strataRun(c).out, results[i]!.out, `table ${JSON.stringify(c.data)}`))
  })
})


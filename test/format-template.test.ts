/**
 * The template engine against the case table (Go's own outputs, see
 * helpers/template-cases.ts), plus the engine's parts the table cannot
 * show: partial output on errors, re-execution with other functions,
 * typed values with methods, docker's list formatting and tabwriter.
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  DOCKER_FUNCS,
  dockerRowType,
  formatDockerList,
  INT64,
  pointerTo,
  sprintf,
  STRING,
  structOf,
  tabwrite,
  Template,
  TemplateError,
  TIME,
  Typed,
  valueOf,
  FLOAT64,
} from '../src/format/index.js'
import { runCase, TEMPLATE_CASES } from './helpers/template-cases.js'

describe('template cases (Go text/template outputs)', () => {
  for (const [i, c] of TEMPLATE_CASES.entries()) {
    test(`#${i} ${JSON.stringify(c.template).slice(0, 90)}`, () => {
      const got = runCase(c)
      assert.equal(got.out, c.out, 'output')
      assert.equal(got.err, c.err, 'error')
    })
  }
})

describe('template engine', () => {
  test('an execution error keeps the output written before it', () => {
    const t = Template.parse('a{{.x}}b{{.y.z}}c')
    assert.throws(
      () => t.execute({ x: 1, y: 'str' }),
      (err: unknown) => err instanceof TemplateError && err.phase === 'exec' && err.output === 'a1b' && err.code === 'INVALID_ARGUMENT',
    )
  })

  test('a parse error is INVALID_ARGUMENT with Go text and no output', () => {
    assert.throws(
      () => Template.parse('{{if}}'),
      (err: unknown) => err instanceof TemplateError && err.phase === 'parse' && err.message === 'template: :1: missing value for if' && err.output === '',
    )
  })

  test('a template parsed once runs with other functions of the same names (docker header rendering)', () => {
    const t = Template.parse('{{upper .a}}', { funcs: DOCKER_FUNCS })
    assert.equal(t.execute({ a: 'x' }), 'X')
    assert.equal(t.execute({ a: 'x' }, { funcs: { ...DOCKER_FUNCS, upper: { params: [STRING], result: STRING, call: (s) => `<${s as string}>` } } }), '<x>')
  })

  test('the template name appears in errors and executeTemplate runs a defined template', () => {
    const t = Template.parse('{{define "row"}}[{{.}}]{{end}}{{.x.y}}', { name: 'top' })
    assert.equal(t.executeTemplate('row', 5), '[5]')
    assert.throws(() => t.execute({ x: 1 }), { message: 'template: top:1:34: executing "top" at <.x.y>: can\'t evaluate field y in type interface {}' })
    assert.throws(() => t.executeTemplate('nope', 1), { message: 'template: no template "nope" associated with template "top"' })
  })

  test('methods with arguments on typed data, and Stringers printed by their String()', () => {
    const ctx = structOf([{ name: 'Created', type: TIME }], 'ctx', {
      Label: { params: [STRING], result: STRING, call: (recv, key) => ((recv as { labels: Record<string, string> }).labels[key as string] ?? '') },
    })
    const data = { labels: { 'com.x': 'one' }, Created: '2024-01-02T03:04:05.5Z' }
    const t = Template.parse('{{.Label "com.x"}}|{{.Label "none"}}|{{.Created}}|{{.}}|{{.Created.Unix}}|{{.Label}}')
    assert.throws(() => t.execute(data, { type: pointerTo(ctx) }), (err: unknown) => {
      assert.ok(err instanceof TemplateError)
      assert.equal(err.output, 'one||2024-01-02 03:04:05.5 +0000 UTC|{2024-01-02 03:04:05.5 +0000 UTC}|1704164645|')
      assert.equal(err.message, 'template: :1:76: executing "" at <.Label>: wrong number of args for Label: want 1 got 0')
      return true
    })
  })

  test('Typed values inside JSON data keep their Go type', () => {
    const t = Template.parse('{{.n}} {{printf "%T" .n}} {{eq .n 3}} {{.f}}')
    assert.equal(t.execute({ n: new Typed(INT64, 3n), f: 1e6 }), '3 int64 true 1e+06')
  })

  test('valueOf and sprintf format like fmt.Sprintf', () => {
    assert.equal(sprintf('%5.2f|%-4d|%q', [valueOf(FLOAT64, Math.PI), valueOf(INT64, 7n), valueOf(STRING, 'a"b')]), ' 3.14|7   |"a\\"b"')
  })

  test('break outside range and undefined functions are parse errors', () => {
    assert.throws(() => Template.parse('{{if 1}}{{break}}{{end}}'), { message: 'template: :1: {{break}} outside {{range}}' })
    assert.throws(() => Template.parse('{{nope 1}}'), { message: 'template: :1: function "nope" not defined' })
  })

  test('deeply recursive templates fail with Go\'s depth error instead of crashing', () => {
    const t = Template.parse('{{define "a"}}{{template "a" .}}{{end}}{{template "a" .}}')
    assert.throws(() => t.execute(1), { message: 'template: :1:25: executing "a" at <{{template "a" .}}>: exceeded maximum template depth (100000)' })
  })
})

describe('docker list formatting', () => {
  const row = dockerRowType('formatter.testContext', { ID: STRING, Name: STRING, Size: STRING })
  const header = { ID: 'THE ID', Name: 'NAME', Size: 'SIZE' }
  const rows = [
    { ID: 'abc', Name: 'first', Size: '1B' },
    { ID: 'defghijklmnop', Name: '<b>&', Size: '22.5MB' },
  ]

  test('a table format gets a header row from the column titles and docker\'s tabwriter layout', () => {
    assert.equal(
      formatDockerList('table {{.ID}}\\t{{.Name}}\\t{{.Size}}', rows, { type: row, header }),
      'THE ID          NAME      SIZE\nabc             first     1B\ndefghijklmnop   <b>&      22.5MB\n',
    )
  })

  test('header functions leave titles alone; an unknown field heads its column <no value>', () => {
    assert.equal(formatDockerList('table {{upper .Name}}\t{{.Other}}', [], { type: row, header }), 'NAME      <no value>\n')
  })

  test('json is {{json .}}: every column, keys sorted, HTML escaped as json.Marshal does', () => {
    assert.equal(formatDockerList('json', rows.slice(1), { type: row, header }), '{"ID":"defghijklmnop","Name":"\\u003cb\\u003e\\u0026","Size":"22.5MB"}\n')
  })

  test('a custom format prints one line per row; a failing row prints nothing but the error', () => {
    assert.equal(formatDockerList('{{.ID}}: {{.Name}}', rows, { type: row, header }), 'abc: first\ndefghijklmnop: <b>&\n')
    assert.throws(() => formatDockerList('{{.ID}} {{.Nope}}', rows, { type: row, header }), {
      message: 'template parsing error: template: :1:10: executing "" at <.Nope>: can\'t evaluate field Nope in type *formatter.testContext',
    })
    assert.throws(() => formatDockerList('{{.ID', rows, { type: row, header }), { message: 'template parsing error: template: :1: unclosed action' })
  })

  test('tabwriter: wide characters take two columns, as in docker 23+ (go-runewidth)', () => {
    assert.equal(tabwrite('日本語のテキスト\tx\nab\ty\n'), '日本語のテキスト   x\nab                 y\n')
    assert.equal(tabwrite('e\u0301\tx\n'), 'e\u0301         x\n')
  })

  test('tabwriter: columns are blocks of consecutive lines; text after the last tab is no column', () => {
    assert.equal(tabwrite('a\tb\tc\naa\tbbbbbbbbbbbbb\nx\n\ty\n'), 'a         b         c\naa        bbbbbbbbbbbbb\nx\n          y\n')
  })
})

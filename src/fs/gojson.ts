/**
 * JSON text as Go's encoding/json.Marshal produces it, for the files dockerd
 * writes with it (repositories.json, v2metadata-by-diffid): no whitespace,
 * map keys sorted bytewise, and Go's string escaping, which differs from
 * JSON.stringify: `<`, `>`, `&`, U+2028 and U+2029 become \u003c, \u003e,
 * \u0026, \u2028, \u2029 (HTML-safe escaping), and control characters other
 * than \n, \r, \t are \u00XX (Go 1.19, which Debian's dockerd 20.10.24 is
 * built with, has no \b or \f short forms).
 */

const HEX = '0123456789abcdef'

/** A string literal exactly as Go's json.Marshal writes it. */
export function goJsonString(s: string): string {
  let out = '"'
  for (const ch of s) {
    const c = ch.codePointAt(0)!
    if (ch === '"' || ch === '\\') out += `\\${ch}`
    else if (ch === '\n') out += '\\n'
    else if (ch === '\r') out += '\\r'
    else if (ch === '\t') out += '\\t'
    else if (c < 0x20 || ch === '<' || ch === '>' || ch === '&') out += `\\u00${HEX[c >> 4]}${HEX[c & 0xf]}`
    else if (c === 0x2028 || c === 0x2029) out += `\\u${c.toString(16)}`
    // A lone surrogate cannot come from valid UTF-8; Go writes U+FFFD for invalid input.
    else if (c >= 0xd800 && c <= 0xdfff) out += '\ufffd'
    else out += ch
  }
  return `${out}"`
}

/** Bytewise order of Go's sort.Strings (UTF-16 order differs only beyond the BMP, compared here by UTF-8 bytes). */
export function goStringCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b))
}

/** A map[string]V as json.Marshal writes it: keys sorted, values encoded by `value`. */
export function goJsonMap<V>(map: Record<string, V>, value: (v: V) => string): string {
  const keys = Object.keys(map).sort(goStringCompare)
  return `{${keys.map((k) => `${goJsonString(k)}:${value(map[k]!)}`).join(',')}}`
}

/**
 * JSON.stringify's text with Go's escapes for what JSON.stringify leaves
 * alone: U+2028/U+2029, \b and \f as \u0008 and \u000c, and with `html`
 * (json.Marshal's default, not json.Encoder with SetEscapeHTML(false)) `<`,
 * `>` and `&` as \u003c, \u003e, \u0026.
 * @example goJsonText(JSON.stringify({ a: '<b>' }), { html: true }) // '{"a":"\\u003cb\\u003e"}'
 */
export function goJsonText(json: string, opts: { html?: boolean } = {}): string {
  const text = json
    .replace(/\\(["\\/bfnrtu])/g, (m, c: string) => (c === 'b' ? '\\u0008' : c === 'f' ? '\\u000c' : m))
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029')
  return opts.html === true ? text.replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`) : text
}

/**
 * Go's text/tabwriter (elastic tabstops), as docker's table output uses it
 * with minwidth 10, tabwidth 1, padding 3, padchar ' ', no flags.
 *
 * Cells are tab-terminated: the text after a line's last tab is not part of
 * any column. A column is a run of consecutive lines that all have a cell
 * in it; its width is the widest cell plus the padding, at least minwidth.
 * Every tab-terminated cell is padded, even at the end of a line (docker's
 * tables keep those trailing blanks). A line with no tab ends all columns.
 */
import { eastAsianWidth } from 'get-east-asian-width'

export interface TabwriterOptions {
  minWidth: number
  tabWidth: number
  padding: number
  padChar: string
  /** Display width of a cell's text; default: one per code point. */
  width?: (s: string) => number
}

/**
 * The display width of text as go-runewidth's StringWidth counts it (docker
 * 23+'s tabwriter; docker 20.10 used Go's, which counts code points): East
 * Asian wide and fullwidth characters take two columns, combining marks,
 * zero-width and control characters none, ambiguous ones one.
 */
export function displayWidth(s: string): number {
  let w = 0
  for (const ch of s) {
    const cp = ch.codePointAt(0)!
    if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || /[\p{Mn}\p{Me}\p{Cf}]/u.test(ch)) continue
    w += eastAsianWidth(cp)
  }
  return w
}

/** docker's settings (cli/command/formatter: NewWriter(out, 10, 1, 3, ' ', 0)), with its display width. */
export const DOCKER_TABWRITER: TabwriterOptions = { minWidth: 10, tabWidth: 1, padding: 3, padChar: ' ', width: displayWidth }

interface Cell {
  text: string
  width: number
  htab: boolean
}

function codePoints(s: string): number {
  let n = 0
  for (const _ of s) n++
  return n
}

/** Formats `text` as Go's tabwriter would after writing it all and calling Flush. */
export function tabwrite(text: string, options: TabwriterOptions = DOCKER_TABWRITER): string {
  const widthOf = options.width ?? codePoints
  let out = ''
  let lines: Cell[][] = [[]]
  let cell = ''
  const widths: number[] = []

  const writeLines = (line0: number, line1: number): void => {
    for (let i = line0; i < line1; i++) {
      const line = lines[i]!
      line.forEach((c, j) => {
        out += c.text
        if (j < widths.length) {
          const pad = widths[j]! - c.width
          if (options.padChar === '\t') {
            if (options.tabWidth > 0) {
              const cellw = Math.ceil(widths[j]! / options.tabWidth) * options.tabWidth
              out += '\t'.repeat(Math.ceil((cellw - c.width) / options.tabWidth))
            }
          } else if (pad > 0) out += options.padChar.repeat(pad)
        }
      })
      if (i + 1 === lines.length) out += cell
      else out += '\n'
    }
  }

  const format = (line0: number, line1: number): void => {
    const column = widths.length
    for (let cur = line0; cur < line1; cur++) {
      if (column >= lines[cur]!.length - 1) continue
      writeLines(line0, cur)
      line0 = cur
      let width = options.minWidth
      for (; cur < line1; cur++) {
        const line = lines[cur]!
        if (column >= line.length - 1) break
        const w = line[column]!.width + options.padding
        if (w > width) width = w
      }
      widths.push(width)
      format(line0, cur)
      widths.pop()
      line0 = cur
    }
    writeLines(line0, line1)
  }

  const flush = (): void => {
    if (cell.length > 0) {
      lines[lines.length - 1]!.push({ text: cell, width: widthOf(cell), htab: false })
      cell = ''
    }
    format(0, lines.length)
    lines = [[]]
  }

  for (const ch of text) {
    if (ch === '\t' || ch === '\v' || ch === '\n' || ch === '\f') {
      const line = lines[lines.length - 1]!
      line.push({ text: cell, width: widthOf(cell), htab: ch === '\t' })
      cell = ''
      if (ch === '\n' || ch === '\f') {
        lines.push([])
        // A line of one cell cannot affect the lines after it: flush (Go does, and it shapes the columns).
        if (ch === '\f' || line.length === 1) flush()
      }
    } else cell += ch
  }
  flush()
  return out
}

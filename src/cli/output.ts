/**
 * What a verb hands back to main.ts: text for stdout, and optionally text
 * for stderr and an exit status (a check that found problems prints them
 * and still fails). Verbs never print themselves.
 */
export interface CommandOutput {
  stdout: string
  stderr?: string
  exitCode?: number
}

export type CommandResult = string | CommandOutput

/** docker's units.HumanSize: decimal units, 3 significant digits ("1.23MB", "512B", "0B"). */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB']
  let value = bytes
  let i = 0
  while (value >= 1000 && i < units.length - 1) {
    value /= 1000
    i++
  }
  return `${Number(value.toPrecision(3))}${units[i]}`
}

/** Pads columns to docker's tabwriter layout (3 spaces between columns). */
export function table(rows: string[][]): string {
  const widths: number[] = []
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)))
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]! + 3))).join('').trimEnd() + '\n').join('')
}

/** The 12-hex short form docker shows for IDs. */
export function shortId(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12)
}

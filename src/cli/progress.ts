/**
 * Per-layer progress bars for load, save and import, drawn the way the
 * docker CLI draws a daemon's JSON progress stream on a terminal:
 *
 *   1f21cecf2e37: Loading layer [=========================>                         ]  1.049MB/2.097MB
 *
 * one line per layer, in the order layers start, each rewritten in place
 * (cursor up, clear line, redraw, cursor down) so the cursor always rests
 * on the line below the bars and whatever the verb prints afterwards
 * ("Loaded image: ...") follows them. Bars are drawn only when the stream
 * is a terminal; anywhere else the verbs are quiet, as `docker load` is
 * when its stdout is not a TTY.
 *
 * The verbs never touch process.stdout for this: main.ts hands them a
 * ProgressSink (the one place that knows the real stream), which keeps
 * the verbs testable and everything below src/cli free of printing.
 */
import type { LayerProgress, ProgressListener } from '../transport/index.js'

/** Where progress goes: a writable text stream and whether it is a terminal. */
export interface ProgressSink {
  /** Bars are drawn only when true. */
  readonly isTTY: boolean
  /** Terminal width in columns, when known (docker draws the bar only above 110). */
  readonly columns?: number | undefined
  write(text: string): void
}

/** What main.ts hands the transport verbs about the process's terminal. */
export interface VerbIO {
  /** Progress and status lines (the process's stdout). */
  stdout: ProgressSink
  /** Whether stdin is a terminal (`load` without -i then refuses, as docker does). */
  stdinIsTTY: boolean
}

/** A sink that never draws (a stdout that is not a terminal). */
export const QUIET_SINK: ProgressSink = { isTTY: false, write: () => {} }

/** Redraw a layer's line at most this often while its bytes move; phase changes always redraw. */
const REDRAW_INTERVAL_MS = 100
/** docker draws the bar only on terminals wider than this, and assumes 200 columns when it cannot tell. */
const BAR_MIN_WIDTH = 110
const DEFAULT_WIDTH = 200
const BAR_CELLS = 50
const ESC = '\x1b'

/** go-units HumanSizeWithPrecision(size, 4), which the progress numbers use ("1.049MB", "512B"). */
export function progressSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB']
  let value = bytes
  let i = 0
  while (value >= 1000 && i < units.length - 1) {
    value /= 1000
    i++
  }
  return `${Number(value.toPrecision(4))}${units[i]}`
}

/**
 * The progress part of a line, as jsonmessage.JSONProgress.String draws
 * it for `docker load`: a 50-cell bar (wide terminals only) and
 * current/total. (No time left: load's progress carries no start time,
 * so docker shows none.)
 */
export function renderProgress(current: number, total: number | undefined, width: number): string {
  if (total === undefined || total <= 0) return progressSize(current).padStart(8)
  const filled = Math.min(BAR_CELLS, Math.floor(Math.floor((current / total) * 100) / 2))
  const bar = width > BAR_MIN_WIDTH ? `[${'='.repeat(filled)}>${' '.repeat(Math.max(0, BAR_CELLS - filled))}] ` : ''
  const numbers = current > total ? progressSize(current).padStart(8) : `${progressSize(current).padStart(8)}/${progressSize(total)}`
  return bar + numbers
}

/** The short ID docker shows for a layer (12 hex of the digest), or '' when the layer has none yet. */
function shortLayerId(event: LayerProgress): string {
  const m = /^sha256:([a-f0-9]{12})/.exec(String(event.diffId ?? ''))
  return m === null ? '' : m[1]!
}

interface Line {
  /** Position among the drawn lines, top first. */
  index: number
  drawnAt: number
  /** An update was throttled: the line does not show the latest event yet. */
  pending: boolean
  last: LayerProgress
  lastPhase: LayerProgress['phase']
}

/**
 * Draws one line per layer that moves bytes. Layers that are skipped
 * (`exists`) or never start get no line, as docker shows none for a layer
 * the daemon already has.
 */
export class LayerProgressBars {
  readonly #sink: ProgressSink
  readonly #status: string
  readonly #now: () => number
  readonly #lines = new Map<string, Line>()

  /** `status` is the verb's word for the work: "Loading layer", "Saving layer", "Importing". */
  constructor(sink: ProgressSink, status: string, now: () => number = Date.now) {
    this.#sink = sink
    this.#status = status
    this.#now = now
  }

  /** The listener to hand the transport (draws only on a terminal). */
  readonly listener: ProgressListener = (event) => this.#update(event)

  /** Redraws lines whose last update was throttled, so every bar ends showing where its layer ended. */
  finish(): void {
    for (const line of this.#lines.values()) {
      if (line.pending) this.#draw(line)
    }
  }

  #update(event: LayerProgress): void {
    if (event.phase === 'waiting' || event.phase === 'exists' || event.phase === 'verified') return
    const key = `${event.image}/${event.layer}`
    const now = this.#now()
    let line = this.#lines.get(key)
    if (line === undefined) {
      line = { index: this.#lines.size, drawnAt: 0, pending: false, last: event, lastPhase: event.phase }
      this.#lines.set(key, line)
      // A new line below the others; the cursor then rests under it.
      this.#sink.write('\n')
      this.#draw(line)
      return
    }
    const phaseChanged = line.lastPhase !== event.phase
    line.last = event
    line.lastPhase = event.phase
    if (phaseChanged || now - line.drawnAt >= REDRAW_INTERVAL_MS) this.#draw(line)
    else line.pending = true // finish() settles it if no later update does
  }

  #draw(line: Line): void {
    const e = line.last
    const now = this.#now()
    const width = this.#sink.columns !== undefined && this.#sink.columns > 0 ? this.#sink.columns : DEFAULT_WIDTH
    const done = e.phase === 'done'
    // A finished layer whose size was never announced shows its final count as the total.
    const total = e.total ?? (done ? e.current : undefined)
    const current = done && total !== undefined ? Math.max(e.current, total) : e.current
    const id = shortLayerId(e)
    const text = `${id === '' ? '' : `${id}: `}${this.#status} ${renderProgress(current, total, width)}`
    const up = this.#lines.size - line.index
    this.#sink.write(`${ESC}[${up}A${ESC}[2K\r${text}\r${ESC}[${up}B`)
    line.drawnAt = now
    line.pending = false
  }
}

/**
 * The progress listener a verb should pass to the transport: bars on a
 * terminal unless `quiet`, nothing otherwise (the listener is then
 * undefined, so the transport need not report at all).
 */
export function layerProgress(sink: ProgressSink, status: string, quiet = false): { onProgress: ProgressListener | undefined; finish: () => void } {
  if (quiet || !sink.isTTY) return { onProgress: undefined, finish: () => {} }
  const bars = new LayerProgressBars(sink, status)
  return { onProgress: bars.listener, finish: () => bars.finish() }
}

interface StatusLine {
  index: number
  drawnAt: number
  text: string
  /** A throttle held the latest text back. */
  pending: boolean
  /** The latest text was a byte-count update. */
  counting: boolean
}

/**
 * docker's pull and push lines on a terminal: one line per layer, in the
 * order they first show (`<id>: <status>`), each rewritten in place as
 * its layer moves on, the cursor resting below them. A byte-count update
 * (`throttle`) after another one redraws at most every
 * REDRAW_INTERVAL_MS; the first one and any status change always redraw;
 * finish() draws what a throttle held back.
 */
export class StatusLines {
  readonly #sink: ProgressSink
  readonly #now: () => number
  readonly #lines = new Map<number, StatusLine>()

  constructor(sink: ProgressSink, now: () => number = Date.now) {
    this.#sink = sink
    this.#now = now
  }

  /** Terminal width for renderProgress (docker assumes 200 columns when it cannot tell). */
  get width(): number {
    return this.#sink.columns !== undefined && this.#sink.columns > 0 ? this.#sink.columns : DEFAULT_WIDTH
  }

  /** Sets layer `key`'s line to `text` (which starts with its short ID). */
  set(key: number, text: string, throttle = false): void {
    let line = this.#lines.get(key)
    if (line === undefined) {
      line = { index: this.#lines.size, drawnAt: 0, text, pending: false, counting: throttle }
      this.#lines.set(key, line)
      this.#sink.write('\n')
    } else {
      if (line.text === text) return
      line.text = text
      const wasCounting = line.counting
      line.counting = throttle
      if (throttle && wasCounting && this.#now() - line.drawnAt < REDRAW_INTERVAL_MS) {
        line.pending = true
        return
      }
    }
    this.#draw(line)
  }

  finish(): void {
    for (const line of this.#lines.values()) if (line.pending) this.#draw(line)
  }

  #draw(line: StatusLine): void {
    const up = this.#lines.size - line.index
    this.#sink.write(`${ESC}[${up}A${ESC}[2K\r${line.text}\r${ESC}[${up}B`)
    line.drawnAt = this.#now()
    line.pending = false
  }
}

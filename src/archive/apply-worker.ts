/**
 * The worker-thread side of applyLayerOffThread (apply-offthread.ts): runs
 * applyDecompressed on bytes the main thread hands over (and hashes), one
 * task at a time.
 *
 * Protocol (every message carries the task id; messages of another task
 * are stale and ignored):
 *   main → worker  start {target, whiteouts, tarSplit, file?}
 *                  chunk {data}    one chunk of the source, asked for by a pull
 *                  end             the source is exhausted
 *                  abort {error}   the source failed (or the tar-split sink did)
 *   worker → main  pull            send the next chunk (one per pull: this is the backpressure)
 *                  read {bytes}    progress of a file source the worker reads itself
 *                  lines {lines}   tar-split lines, batched
 *                  done {result} | failed {error}
 * With `file`, the worker reads (and hashes) the source from the file
 * itself (applyFile): no pulls, no chunks.
 */
import { parentPort } from 'node:worker_threads'
import { Readable } from 'node:stream'
import { applyDecompressed, applyFile, type ApplyOptions } from './apply.js'
import { deserializeError, serializeError, type SerializedError, type WorkerRequest, type WorkerReply } from './apply-protocol.js'
import { collectEvery } from './gc.js'

/** Bytes of source buffered ahead of the parser: a few chunks, so reading overlaps applying. */
const READ_AHEAD = 4 << 20
/** tar-split lines are sent back in batches of about this many characters. */
const LINE_BATCH = 1 << 16

const port = parentPort
if (port === null) throw new Error('apply-worker.js runs as a worker thread only')

let current: { id: number; source: Readable; aborted?: unknown } | undefined

function post(msg: WorkerReply): void {
  port!.postMessage(msg)
}

port.on('message', (msg: WorkerRequest) => {
  if (msg.t === 'start') {
    void run(msg)
    return
  }
  if (current === undefined || current.id !== msg.id) return
  switch (msg.t) {
    case 'chunk':
      current.source.push(Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength))
      // Chunks are external memory V8 collects late (gc.ts).
      collectEvery(msg.data.byteLength)
      break
    case 'end':
      current.source.push(null)
      break
    case 'abort':
      current.aborted = deserializeError(msg.error)
      current.source.destroy(current.aborted as Error)
      break
  }
})

async function run({ id, target, whiteouts, tarSplit, file }: Extract<WorkerRequest, { t: 'start' }>): Promise<void> {
  const source = new Readable({
    highWaterMark: READ_AHEAD,
    read() {
      post({ t: 'pull', id })
    },
  })
  const task: NonNullable<typeof current> = { id, source }
  current = task
  let lines: string[] = []
  let batched = 0
  const flush = (): void => {
    if (lines.length === 0) return
    post({ t: 'lines', id, lines: lines.join('') })
    lines = []
    batched = 0
  }
  const opts: Omit<ApplyOptions, 'expectedDiffId'> = { whiteouts }
  if (tarSplit) {
    opts.tarSplit = (line) => {
      lines.push(line)
      batched += line.length
      if (batched >= LINE_BATCH) flush()
    }
  }
  try {
    const result =
      file === undefined
        ? await applyDecompressed(target, source, opts)
        : await applyFile(
            target,
            { path: file.path, start: file.start, ...(file.length === undefined ? {} : { length: file.length }), ...(file.progress ? { onRead: (bytes: number) => post({ t: 'read', id, bytes }) } : {}) },
            opts,
            () => task.aborted,
          )
    flush()
    post({ t: 'done', id, result })
  } catch (err) {
    let error: SerializedError
    try {
      error = serializeError(err)
    } catch {
      error = { message: String(err) }
    }
    post({ t: 'failed', id, error })
  } finally {
    current = undefined
    source.destroy()
  }
}

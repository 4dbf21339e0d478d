/**
 * applyLayerOffThread: applyLayer (apply.ts) run in a worker thread.
 *
 * Why: applying a layer is CPU work on one thread (sha256 of the tar,
 * CRC-64 of every file for tar-split, tar parsing, thousands of
 * synchronous file calls). On the main thread, the layers of an image can
 * only be applied one after the other, whatever the cores; in workers,
 * the layer store applies them at the same time (registerChain) and the
 * main thread stays free to read sources and write tar-split files.
 *
 * The main thread reads `source`, hashes it (its digest, and the diffID
 * when it is not compressed: the thread that reads is mostly idle, the
 * workers are not) and hands each chunk over when the worker asks for one
 * (a copy: a chunk may be a view into a buffer the source reuses), at most
 * a few MiB ahead; the worker decompresses (and then hashes the tar),
 * parses and writes; tar-split lines come back in batches for
 * `opts.tarSplit`. The result and the errors are applyLayer's: a failure
 * of `source` rejects with that very error; a failure in the worker with
 * the worker's error rebuilt (StrataError code, message, details kept).
 * `source` is destroyed when the apply fails.
 *
 * A source marked as a byte range of a file (file-source.ts) and not
 * verified by its own stream (no `opts.sourceDigest`) is not read here at
 * all: the worker reads the file itself into a reused buffer and hashes
 * it (applyFile), and `source` is destroyed unread at the end. On tmpfs
 * that halves a load's CPU: the hand-over of chunks (copies, messages,
 * and the collections of the transferred buffers) cost more than the
 * hashing.
 *
 * Workers are pooled: one task at a time each, kept (unref'd, so they
 * never hold the process open) for the next layer up to one per core.
 */
import { availableParallelism } from 'node:os'
import type { Readable } from 'node:stream'
import { Worker } from 'node:worker_threads'
import { StrataError } from '../errors/index.js'
import { Digester } from '../digest/index.js'
import { finishApply, type ApplyOptions, type ApplyResult } from './apply.js'
import { fileRangeOf, type FileRange } from './file-source.js'
import { deserializeError, serializeError, type WorkerReply, type WorkerRequest } from './apply-protocol.js'
import { collectEvery } from './gc.js'

const WORKER_URL = new URL('./apply-worker.js', import.meta.url)
/** Bytes of source sent to the worker per message (see #pull). */
const CHUNK = 1 << 20

const idle: Worker[] = []
let nextId = 1

/**
 * While a worker waits in the pool, an error or exit of its own (it failed
 * to start, say) takes it out of the pool instead of being an uncaught
 * 'error' event, or a dead worker handed to the next apply, which would
 * wait forever for its replies.
 */
const onIdleError = (): void => {}
function onIdleExit(this: Worker): void {
  const at = idle.indexOf(this)
  if (at >= 0) idle.splice(at, 1)
  this.off('error', onIdleError)
}

function park(w: Worker): void {
  w.unref()
  w.on('error', onIdleError)
  w.once('exit', onIdleExit)
  idle.push(w)
}

/** Undoes park's listeners: the worker is about to apply, or to end. */
function unpark(w: Worker): void {
  w.off('error', onIdleError)
  w.off('exit', onIdleExit)
}

function takeWorker(): Worker {
  const w = idle.pop()
  if (w !== undefined) {
    unpark(w)
    w.ref()
    return w
  }
  return new Worker(WORKER_URL)
}

function giveBack(w: Worker): void {
  if (idle.length >= availableParallelism()) {
    void w.terminate()
    return
  }
  park(w)
}

/**
 * Starts apply workers now, up to `count` idle in the pool (at most one per
 * core), for applies that are about to come: a worker takes ~50 ms of
 * thread, isolate and bundle start before it can apply anything, and a
 * load (src/cli/load.ts) has ~0.1-0.2 s of its own work (the store opened,
 * the archive's index read) before its first apply, which the workers'
 * start then overlaps. They are unref'd: they never hold the process open.
 */
export function prestartApplyWorkers(count: number): void {
  const want = Math.min(count, availableParallelism())
  while (idle.length < want) park(new Worker(WORKER_URL))
}

/** Ends the workers idle in the pool (the applies they were started for will not come: the driver applies on its own thread). */
export function stopIdleApplyWorkers(): void {
  for (const w of idle.splice(0)) {
    unpark(w)
    void w.terminate()
  }
}

function toBytes(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk
  if (typeof chunk === 'string') return Buffer.from(chunk)
  throw new StrataError('INVALID_ARGUMENT', `Layer stream yielded a ${typeof chunk}, expected bytes`)
}

export function applyLayerOffThread(target: string, source: Readable, opts: ApplyOptions): Promise<ApplyResult> {
  return new OffThreadApply(target, source, opts).result
}

/**
 * One apply on one worker: `start` hands the worker its task, `#pull`
 * feeds it a chunk whenever it asks, `#forwardLines` passes its tar-split
 * lines on, `#onDone` checks its result against the source's hash, and
 * `#finish` settles once, giving the worker back (or dropping a dead one).
 */
class OffThreadApply {
  readonly result: Promise<ApplyResult>
  readonly #target: string
  readonly #source: Readable
  readonly #opts: ApplyOptions
  readonly #worker = takeWorker()
  readonly #id = nextId++
  #it: AsyncIterator<unknown> | undefined
  /** The file the worker reads itself, when `source` is one (see the header). */
  readonly #file: FileRange | undefined
  /** The source's digest, unless the caller knows it verified (ApplyOptions.sourceDigest). */
  readonly #sourceHash = new Digester()
  #sourceSize = 0
  #resolve!: (r: ApplyResult) => void
  #reject!: (err: unknown) => void
  #settled = false
  /** The source's own error (or the tar-split sink's), rethrown as is rather than as the worker's copy. */
  #sourceError: unknown
  /** Pulls run one after the other, in the order the worker asked. */
  #pumping: Promise<void> = Promise.resolve()
  readonly #onMessage = (msg: WorkerReply): void => this.#message(msg)
  readonly #onError = (err: Error): void => {
    // An uncaught error kills the worker: it is not given back.
    this.#finish(new StrataError('SYSCALL', `Applying a layer to "${this.#target}" failed in its worker thread: ${err.message}`, { cause: err }), undefined, true)
  }
  readonly #onExit = (code: number): void => {
    this.#finish(new StrataError('SYSCALL', `The worker thread applying a layer to "${this.#target}" exited (code ${code}) before it finished`), undefined, true)
  }

  constructor(target: string, source: Readable, opts: ApplyOptions) {
    this.#target = target
    this.#source = source
    this.#opts = opts
    this.#file = opts.sourceDigest === undefined ? fileRangeOf(source) : undefined
    // The iterator listens only from its first next(), which waits for the
    // worker's first pull (a new worker takes tens of ms to start): until
    // then, this keeps a source error from being an uncaught exception. The
    // error itself reaches the apply through next(), which rethrows it.
    source.on('error', () => {})
    this.result = new Promise<ApplyResult>((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    try {
      this.#start()
    } catch (err) {
      this.#finish(err)
    }
  }

  #post(msg: WorkerRequest, transfer?: ArrayBuffer[]): void {
    this.#worker.postMessage(msg, transfer)
  }

  #start(): void {
    this.#worker.on('message', this.#onMessage)
    this.#worker.on('error', this.#onError)
    this.#worker.on('exit', this.#onExit)
    const f = this.#file
    const file = f === undefined ? undefined : { path: f.path, start: f.start, ...(f.length === undefined ? {} : { length: f.length }), progress: f.onRead !== undefined }
    this.#post({ t: 'start', id: this.#id, target: this.#target, whiteouts: this.#opts.whiteouts, tarSplit: this.#opts.tarSplit !== undefined, ...(file === undefined ? {} : { file }) })
  }

  #message(msg: WorkerReply): void {
    if (msg.id !== this.#id) return
    switch (msg.t) {
      case 'pull':
        this.#pumping = this.#pumping.then(() => this.#pull())
        break
      case 'lines':
        this.#forwardLines(msg.lines)
        break
      case 'read':
        try {
          this.#file?.onRead?.(msg.bytes)
        } catch (err) {
          this.#sourceError ??= err
          this.#abort(err)
        }
        break
      case 'done':
        this.#onDone(msg.result)
        break
      case 'failed':
        this.#finish(this.#sourceError ?? deserializeError(msg.error))
        break
    }
  }

  /** Stops the worker's source: it fails with `err`, which the apply then reports. */
  #abort(err: unknown): void {
    this.#post({ t: 'abort', id: this.#id, error: serializeError(err) })
  }

  /** The next ~CHUNK bytes of the source to the worker, or its end. */
  async #pull(): Promise<void> {
    if (this.#settled) return
    this.#it ??= this.#source[Symbol.asyncIterator]() as AsyncIterator<unknown>
    let r: IteratorResult<unknown>
    try {
      r = await this.#it.next()
    } catch (err) {
      if (this.#settled) return
      this.#sourceError = err
      this.#abort(err)
      return
    }
    if (this.#settled) return
    if (r.done === true) {
      this.#post({ t: 'end', id: this.#id })
      return
    }
    // Source chunks are small (64 KiB from a file stream): gathered into
    // one message of about CHUNK bytes, so the threads exchange a sixteenth
    // of the messages (each a wake-up of the other thread), and the copy
    // that a transfer needs anyway is made once, into the gathered buffer.
    // The worker reads ahead (READ_AHEAD in apply-worker.ts), so it works
    // on one gathered chunk while the next is read.
    const parts: Uint8Array[] = []
    let size = 0
    let ended = false
    try {
      for (;;) {
        const bytes = toBytes(r.value)
        if (this.#opts.sourceDigest === undefined) this.#sourceHash.update(bytes as Buffer)
        this.#sourceSize += bytes.length
        parts.push(bytes)
        size += bytes.length
        if (size >= CHUNK) break
        r = await this.#it!.next()
        if (this.#settled) return
        if (r.done === true) {
          ended = true
          break
        }
      }
    } catch (err) {
      if (this.#settled) return
      this.#sourceError = err
      this.#abort(err)
      return
    }
    const gathered = new Uint8Array(size)
    let at = 0
    for (const p of parts) {
      gathered.set(p, at)
      at += p.length
    }
    this.#post({ t: 'chunk', id: this.#id, data: gathered }, [gathered.buffer as ArrayBuffer])
    collectEvery(size)
    if (ended) this.#post({ t: 'end', id: this.#id })
  }

  /** A batch of tar-split lines to the caller's sink, one line at a time. */
  #forwardLines(lines: string): void {
    try {
      // Lines are JSON, so "\n" occurs only at their ends.
      let from = 0
      for (;;) {
        const nl = lines.indexOf('\n', from)
        if (nl < 0) break
        this.#opts.tarSplit!(lines.slice(from, nl + 1))
        from = nl + 1
      }
    } catch (err) {
      // The sink failed: stop the worker's source, report the sink's error.
      this.#sourceError ??= err
      this.#abort(err)
    }
  }

  /** The worker applied the whole tar: its result, with the source's digest and size, checked against the expected diffID. */
  #onDone(workerResult: Extract<WorkerReply, { t: 'done' }>['result']): void {
    if (this.#sourceError !== undefined) {
      this.#finish(this.#sourceError)
      return
    }
    let result: ApplyResult
    try {
      // A file source was read and hashed by the worker.
      const read = 'sourceDigest' in workerResult ? workerResult : undefined
      const { sourceDigest, sourceSize, ...body } = read ?? { ...workerResult, sourceDigest: undefined, sourceSize: undefined }
      const digest = this.#opts.sourceDigest ?? sourceDigest ?? this.#sourceHash.digest()
      result = finishApply(body, digest, sourceSize ?? this.#sourceSize, this.#opts.expectedDiffId)
    } catch (err) {
      this.#finish(err)
      return
    }
    this.#finish(undefined, result)
  }

  /**
   * Settles the apply. Called once the worker is idle again (it replied
   * 'done' or 'failed') or dead (`workerDied`): an idle worker goes back
   * to the pool, failure or not, so that no ref'd worker keeps the
   * process alive after a failed apply.
   */
  #finish(err: unknown, result?: ApplyResult, workerDied = false): void {
    if (this.#settled) return
    this.#settled = true
    this.#worker.off('message', this.#onMessage)
    this.#worker.off('error', this.#onError)
    this.#worker.off('exit', this.#onExit)
    if (workerDied) void this.#worker.terminate()
    else giveBack(this.#worker)
    if (err === undefined) {
      // Read by the worker, not through the stream: release it unread.
      if (this.#file !== undefined) this.#source.destroy()
      this.#resolve(result!)
      return
    }
    // Nothing reads `source` any more: release it (an fd, a socket).
    this.#source.destroy()
    void this.#it?.return?.().catch(() => {})
    this.#reject(err)
  }
}

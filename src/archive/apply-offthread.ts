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
 * Workers are pooled: one task at a time each, kept (unref'd, so they
 * never hold the process open) for the next layer up to one per core.
 */
import { availableParallelism } from 'node:os'
import type { Readable } from 'node:stream'
import { Worker } from 'node:worker_threads'
import { StrataError } from '../errors/index.js'
import { Digester } from '../digest/index.js'
import { finishApply, type ApplyOptions, type ApplyResult } from './apply.js'
import { deserializeError, serializeError, type WorkerReply, type WorkerRequest } from './apply-protocol.js'

const WORKER_URL = new URL('./apply-worker.js', import.meta.url)
/** Bytes of source sent to the worker per message (see pull). */
const CHUNK = 1 << 20

const idle: Worker[] = []
let nextId = 1

function takeWorker(): Worker {
  const w = idle.pop()
  if (w !== undefined) {
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
  w.unref()
  idle.push(w)
}

function toBytes(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk
  if (typeof chunk === 'string') return Buffer.from(chunk)
  throw new StrataError('INVALID_ARGUMENT', `Layer stream yielded a ${typeof chunk}, expected bytes`)
}

export function applyLayerOffThread(target: string, source: Readable, opts: ApplyOptions): Promise<ApplyResult> {
  const worker = takeWorker()
  const id = nextId++
  const it = source[Symbol.asyncIterator]() as AsyncIterator<unknown>
  // The iterator listens only from its first next(), which waits for the
  // worker's first pull (a new worker takes tens of ms to start): until
  // then, this keeps a source error from being an uncaught exception. The
  // error itself reaches the apply through next(), which rethrows it.
  source.on('error', () => {})
  return new Promise<ApplyResult>((resolve, reject) => {
    let settled = false
    /** The source's own error, rethrown as is rather than as the worker's copy. */
    let sourceError: unknown
    let pumping: Promise<void> = Promise.resolve()
    const sourceHash = new Digester()

    const post = (msg: WorkerRequest, transfer?: ArrayBuffer[]): void => {
      worker.postMessage(msg, transfer)
    }
    /**
     * Settles the apply. Called once the worker is idle again (it replied
     * 'done' or 'failed') or dead (`workerDied`): an idle worker goes back
     * to the pool, failure or not, so that no ref'd worker keeps the
     * process alive after a failed apply.
     */
    const finish = (err: unknown, result?: ApplyResult, workerDied = false): void => {
      if (settled) return
      settled = true
      worker.off('message', onMessage)
      worker.off('error', onError)
      worker.off('exit', onExit)
      if (workerDied) void worker.terminate()
      else giveBack(worker)
      if (err === undefined) {
        resolve(result!)
        return
      }
      // Nothing reads `source` any more: release it (an fd, a socket).
      source.destroy()
      void it.return?.().catch(() => {})
      reject(err)
    }
    const pull = async (): Promise<void> => {
      if (settled) return
      let r: IteratorResult<unknown>
      try {
        r = await it.next()
      } catch (err) {
        if (settled) return
        sourceError = err
        post({ t: 'abort', id, error: serializeError(err) })
        return
      }
      if (settled) return
      if (r.done === true) {
        post({ t: 'end', id })
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
          sourceHash.update(bytes as Buffer)
          parts.push(bytes)
          size += bytes.length
          if (size >= CHUNK) break
          r = await it.next()
          if (settled) return
          if (r.done === true) {
            ended = true
            break
          }
        }
      } catch (err) {
        if (settled) return
        sourceError = err
        post({ t: 'abort', id, error: serializeError(err) })
        return
      }
      const gathered = new Uint8Array(size)
      let at = 0
      for (const p of parts) {
        gathered.set(p, at)
        at += p.length
      }
      post({ t: 'chunk', id, data: gathered }, [gathered.buffer as ArrayBuffer])
      if (ended) post({ t: 'end', id })
    }
    const onMessage = (msg: WorkerReply): void => {
      if (msg.id !== id) return
      switch (msg.t) {
        case 'pull':
          pumping = pumping.then(pull)
          break
        case 'lines':
          try {
            // Lines are JSON, so "\n" occurs only at their ends.
            let from = 0
            for (;;) {
              const nl = msg.lines.indexOf('\n', from)
              if (nl < 0) break
              opts.tarSplit!(msg.lines.slice(from, nl + 1))
              from = nl + 1
            }
          } catch (err) {
            // The sink failed: stop the worker's source, report the sink's error.
            sourceError ??= err
            post({ t: 'abort', id, error: serializeError(err) })
          }
          break
        case 'done': {
          if (sourceError !== undefined) {
            finish(sourceError)
            break
          }
          let result: ApplyResult
          try {
            result = finishApply(msg.result, sourceHash.digest(), sourceHash.size, opts.expectedDiffId)
          } catch (err) {
            finish(err)
            break
          }
          finish(undefined, result)
          break
        }
        case 'failed':
          finish(sourceError ?? deserializeError(msg.error))
          break
      }
    }
    const onError = (err: Error): void => {
      // An uncaught error kills the worker: it is not given back.
      finish(new StrataError('SYSCALL', `Applying a layer to "${target}" failed in its worker thread: ${err.message}`, { cause: err }), undefined, true)
    }
    const onExit = (code: number): void => {
      finish(new StrataError('SYSCALL', `The worker thread applying a layer to "${target}" exited (code ${code}) before it finished`), undefined, true)
    }
    worker.on('message', onMessage)
    worker.on('error', onError)
    worker.on('exit', onExit)
    post({
      t: 'start',
      id,
      target,
      whiteouts: opts.whiteouts,
      tarSplit: opts.tarSplit !== undefined,
    })
  })
}


/**
 * A pull's per-layer progress as dockerd 20.10 streams it (POST
 * /images/create), from the library's LayerProgress events, so that
 * `docker pull` against strata serve prints what it prints against
 * dockerd. dockerd, per layer (measured against a distribution registry):
 *
 *   Already exists                        a layer in the store (listed first, as docker checks them first)
 *   Pulling fs layer                      every other layer, before any byte moves
 *   Waiting                               one that has no download slot while others download
 *   Downloading {current,total}           while its blob streams
 *   Verifying Checksum, Download complete once all bytes are in and the digest checked
 *   Extracting {current,total}            (dockerd unpacks after the download)
 *   Pull complete                         registered
 *
 * strata downloads and applies in one pass, so there is no Extracting
 * phase: "Download complete" comes when the digest checked at the
 * stream's end ('verified'), "Pull complete" when the layer is registered
 * ('done'). An image already there under that name with every layer in
 * the store ("Image is up to date") gets no per-layer lines, as dockerd
 * sends none then; so "Already exists" lines wait for the first byte of a
 * download or for the pull's end. The library reports the layers it finds
 * (a prefix of the chain) before it opens any other, so holding them back
 * changes no order.
 */
import type { LayerProgress } from '../../transport/index.js'
import type { JsonMessageStream } from '../response.js'

/** A layer's byte counts are sent at most this often (dockerd's progress reader: 100 ms), the first and last always. */
const PROGRESS_INTERVAL_MS = 100

type LayerState = 'announced' | 'exists' | 'waiting' | 'downloading' | 'verified' | 'done'

export class PullProgress {
  readonly #out: JsonMessageStream
  #digests: string[] = []
  readonly #state = new Map<number, LayerState>()
  readonly #lastSent = new Map<number, number>()
  /** Layers found in the store, not yet told (see the file comment). */
  readonly #held: number[] = []
  #started = false

  constructor(out: JsonMessageStream) {
    this.#out = out
  }

  /** The manifest's layer digests, bottom first (docker names a layer by its blob's short digest). */
  resolved(layerDigests: string[]): void {
    this.#digests = layerDigests
  }

  #id(e: LayerProgress | number, diffId = ''): string {
    const layer = typeof e === 'number' ? e : e.layer
    const digest = this.#digests[layer] ?? (typeof e === 'number' ? diffId : e.diffId)
    return digest.replace(/^sha256:/, '').slice(0, 12)
  }

  /** The first byte is about to move: the held "Already exists" lines, then "Pulling fs layer" for every layer not in the store. */
  #start(): void {
    if (this.#started) return
    this.#started = true
    for (const layer of this.#held) this.#out.layer(this.#id(layer), 'Already exists')
    this.#held.length = 0
    for (const [layer, state] of [...this.#state].sort((a, b) => a[0] - b[0])) {
      if (state === 'announced') this.#out.layer(this.#id(layer), 'Pulling fs layer')
    }
  }

  /** Layers that have not started while `busy` downloads: "Waiting", once each. */
  #markWaiting(busy: number): void {
    for (const [layer, state] of [...this.#state].sort((a, b) => a[0] - b[0])) {
      if (layer === busy || state !== 'announced') continue
      this.#state.set(layer, 'waiting')
      this.#out.layer(this.#id(layer), 'Waiting')
    }
  }

  /** Finished its bytes: "Verifying Checksum" then "Download complete" (the digest is checked as the stream ends). */
  #verified(e: LayerProgress): void {
    const id = this.#id(e)
    this.#out.layer(id, 'Verifying Checksum')
    this.#out.layer(id, 'Download complete')
    this.#state.set(e.layer, 'verified')
  }

  event(e: LayerProgress): void {
    const state = this.#state.get(e.layer)
    switch (e.phase) {
      case 'waiting':
        if (state === undefined) this.#state.set(e.layer, 'announced')
        return
      case 'exists':
        this.#state.set(e.layer, 'exists')
        if (this.#started) this.#out.layer(this.#id(e), 'Already exists')
        else this.#held.push(e.layer)
        return
      case 'copying': {
        this.#start()
        if (state === 'verified' || state === 'done') return
        const total = e.total ?? 0
        const now = Date.now()
        this.#state.set(e.layer, 'downloading')
        // Bytes of this layer are moving: whatever has not started has no slot.
        if (e.current > 0) this.#markWaiting(e.layer)
        const last = total > 0 && e.current >= total
        // dockerd's first Downloading line already carries bytes; an opened stream with none yet says nothing.
        if (e.current === 0) return
        const sentBefore = this.#lastSent.get(e.layer)
        if (sentBefore !== undefined && !last && now - sentBefore < PROGRESS_INTERVAL_MS) return
        this.#lastSent.set(e.layer, now)
        this.#out.progress(this.#id(e), 'Downloading', e.current, total)
        return
      }
      case 'verified':
        this.#start()
        if (state !== 'verified' && state !== 'done') this.#verified(e)
        return
      case 'done':
        this.#start()
        // A source that names no digest sends no 'verified': its end is the check.
        if (state !== 'verified') this.#verified(e)
        this.#state.set(e.layer, 'done')
        this.#out.layer(this.#id(e), 'Pull complete')
        return
    }
  }

  /** The pull ended; `updated` false is "Image is up to date" (no layer lines, as dockerd). */
  finish(updated: boolean): void {
    if (updated) this.#start()
  }
}

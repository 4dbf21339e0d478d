/**
 * Pull-style reading of a tar stream: `for await (const e of readTar(src))`.
 * Each entry's body must be read before asking for the next entry, or it is
 * skipped. Bodies are streamed (sub-arrays of the source's chunks), never
 * gathered, so an entry may be a multi-GB layer inside an image archive.
 */
import { TarParser } from './parser.js'
import type { TarHeader } from './types.js'

export interface TarEntry {
  header: TarHeader
  /** The entry's content, in chunks; empty for every type but 'file'. */
  body(): AsyncGenerator<Buffer, void, undefined>
}

type Event = { kind: 'entry'; header: TarHeader } | { kind: 'data'; chunk: Buffer } | { kind: 'end' }

class EventSource {
  readonly #iterator: AsyncIterator<Buffer>
  readonly #parser: TarParser
  #events: Event[] = []
  #index = 0
  #finished = false

  constructor(source: AsyncIterable<Buffer>) {
    this.#iterator = source[Symbol.asyncIterator]()
    const events = (): Event[] => this.#events
    this.#parser = new TarParser({
      entry: (header) => events().push({ kind: 'entry', header }),
      data: (chunk) => events().push({ kind: 'data', chunk }),
      entryEnd: () => events().push({ kind: 'end' }),
    })
  }

  async next(): Promise<Event | undefined> {
    while (this.#index >= this.#events.length) {
      if (this.#finished) return undefined
      this.#events = []
      this.#index = 0
      const r = await this.#iterator.next()
      if (r.done === true) {
        this.#finished = true
        this.#parser.end()
      } else {
        this.#parser.write(r.value)
      }
    }
    return this.#events[this.#index++]
  }

  async close(): Promise<void> {
    await this.#iterator.return?.()
  }
}

export async function* readTar(source: AsyncIterable<Buffer>): AsyncGenerator<TarEntry, void, undefined> {
  const events = new EventSource(source)
  try {
    for (;;) {
      let ev = await events.next()
      while (ev !== undefined && ev.kind !== 'entry') ev = await events.next()
      if (ev === undefined) return
      let bodyEnded = ev.header.size === 0
      yield {
        header: ev.header,
        body: async function* () {
          while (!bodyEnded) {
            const e = await events.next()
            if (e === undefined || e.kind === 'end') {
              bodyEnded = true
              return
            }
            if (e.kind === 'data') yield e.chunk
          }
        },
      }
    }
  } finally {
    await events.close()
  }
}

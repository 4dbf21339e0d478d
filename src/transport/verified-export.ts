/**
 * A layer's tar as the layer store rebuilds it (tar-split plus the
 * driver's files), failing at its end unless it hashed to the diffID: what
 * save and push send out must be the layer the image names.
 */
import { Readable } from 'node:stream'
import type { Digest } from '../digest/index.js'
import { StrataError } from '../errors/index.js'
import type { Store } from '../store/index.js'

/** A layer export that fails at its end unless it verified against the diffID. */
export async function openVerifiedLayer(store: Store, chain: Digest, diffId: Digest): Promise<Readable> {
  const exp = await store.layers.export(chain)
  const wrapper = Readable.from(
    (async function* () {
      try {
        for await (const chunk of exp.stream as AsyncIterable<Buffer>) yield chunk
      } finally {
        exp.stream.destroy()
      }
      const v = await exp.verified
      if (!v.matches) {
        throw new StrataError('DIGEST_MISMATCH', `Layer ${chain} exports as ${v.digest}, not as its diffID ${diffId}; the layer is damaged (run \`strata check\`)`, {
          details: { chainId: chain, diffId, actual: v.digest },
        })
      }
    })(),
    { objectMode: false },
  )
  // Destroyed before its first read, the generator's finally never runs: the export (and its layer hold) ends here then.
  wrapper.once('close', () => exp.stream.destroy())
  return wrapper
}

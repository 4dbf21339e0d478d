/**
 * One strata process registering an image, as `strata load` will: opens
 * the store on argv[2] (overlay2), registers the layer tars named in the
 * JSON of argv[3] as one chain (registerChain) with their diffIDs, stores the
 * config and tags it. The layerstore benchmark runs it as its own process,
 * as the peers run (docker's CLI and daemon, containers-storage's CLI).
 */
import { createReadStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { parseDigest } from '../src/digest/index.js'
import { Store } from '../src/store/index.js'

interface Job {
  layers: string[]
  diffIds: string[]
  config: string
  tag: string
}

const root = process.argv[2]!
const job = JSON.parse(process.argv[3]!) as Job
const store = await Store.open({ root, driver: 'overlay2' })
try {
  await store.layers.registerChain(
    job.layers.map((file, i) => ({
      open: async () => createReadStream(file, { highWaterMark: 1 << 20 }),
      expectedDiffId: parseDigest(job.diffIds[i]!),
    })),
    null,
  )
  const { id } = await store.images.create(await readFile(job.config))
  await store.references.addTag(job.tag, id)
} finally {
  await store.close()
}

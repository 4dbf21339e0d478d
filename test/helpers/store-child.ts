/**
 * A strata process for the multi-process store tests: opens the store on a
 * data root and runs the steps given as JSON in argv[2], printing one line
 * per finished step on stdout ("open" once the store is open, "layer <chainID>", "image <id>", "tag <ref>",
 * "untag <ref>", "rmi <id>", "done"). Lines go to a pipe, which Node writes
 * synchronously, so a line printed is a step finished even if the process is
 * killed right after.
 */
import { createReadStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { parseDigest, type Digest } from '../../src/digest/index.js'
import { Store } from '../../src/store/index.js'

export interface ChildSpec {
  root: string
  driver: string
  steps: ChildStep[]
}

export type ChildStep =
  | { load: { layers: string[]; diffIds: string[]; config: string } }
  | { tag: { ref: string; image: string; force?: boolean } }
  | { untag: { ref: string } }
  | { rmi: { image: string } }

const spec = JSON.parse(process.argv[2]!) as ChildSpec
const say = (line: string): void => void process.stdout.write(`${line}\n`)

const store = await Store.open({ root: spec.root, driver: spec.driver })
say('open')
try {
  for (const step of spec.steps) {
    if ('load' in step) {
      let parent: Digest | null = null
      const handles = []
      for (const [i, file] of step.load.layers.entries()) {
        const { layer } = await store.layers.register(createReadStream(file), parent, { expectedDiffId: parseDigest(step.load.diffIds[i]!) })
        handles.push(layer)
        say(`layer ${layer.chainId}`)
        parent = layer.chainId
      }
      const { id } = await store.images.create(await readFile(step.load.config))
      for (const h of handles) await h.release()
      say(`image ${id}`)
    } else if ('tag' in step) {
      await store.references.addTag(step.tag.ref, step.tag.image, { force: step.tag.force === true })
      say(`tag ${step.tag.ref}`)
    } else if ('untag' in step) {
      await store.references.delete(step.untag.ref)
      say(`untag ${step.untag.ref}`)
    } else {
      await store.references.deleteAllFor(step.rmi.image)
      await store.images.delete(step.rmi.image)
      say(`rmi ${step.rmi.image}`)
    }
  }
  say('done')
} finally {
  await store.close()
}

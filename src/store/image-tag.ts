/**
 * `docker tag SOURCE TARGET`: points a tag at an image, as dockerd 20.10's
 * TagImage does: the source is an ID, short ID or reference; the target
 * gets `:latest` when it has no tag, may not carry a digest, and is moved
 * if it pointed elsewhere (docker tags with force since 1.10); then the
 * image's lastUpdated (inspect's Metadata.LastTagTime) is set to now.
 */
import { StrataError } from '../errors/index.js'
import { familiarString, parseReference, withDefaultTag, type ImageID } from '../image/index.js'
import type { Store } from './index.js'

export interface TagImageResult {
  id: ImageID
  /** The tag as docker prints it (`name:tag`). */
  tag: string
  /** The image the tag pointed to before, when it was moved. */
  previous?: ImageID
}

export async function tagImage(store: Store, source: string, target: string): Promise<TagImageResult> {
  const id = await store.findImage(source)
  const ref = parseReference(target)
  if (ref.digest !== undefined) {
    throw new StrataError('INVALID_ARGUMENT', `refusing to create a tag with a digest reference: "${target}"`, {
      hint: 'a tag is NAME[:TAG]; digest references come from pulls and loads',
    })
  }
  const tagged = withDefaultTag(ref)
  const added = await store.references.addTag(tagged, id, { force: true })
  await store.images.setLastUpdated(id)
  const result: TagImageResult = { id, tag: familiarString(tagged) }
  if (added.previous !== undefined && added.previous !== id) result.previous = added.previous
  return result
}

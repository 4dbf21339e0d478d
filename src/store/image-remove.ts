/**
 * `docker rmi`: untagging and deleting images with dockerd 20.10's rules
 * (daemon/images/image_delete.go), returning docker's list of what was
 * done (`{Untagged}` / `{Deleted}` items, in order):
 *
 * - By reference (`rmi busybox:1`): the reference is removed ("Untagged:
 *   busybox:1"; a bare name means `:latest`). When it was the name's last
 *   tag, the name's digest references go too. If other references remain the
 *   image stays; otherwise the image is deleted as below, except that a
 *   conflict (children, containers) then quietly keeps it, unless it is
 *   dangling and has no container, as docker does.
 * - By ID (full, short, `sha256:`-prefixed): with one tag (plus digests of
 *   that same name) the references are removed and the image deleted; with
 *   references in several repositories, a conflict ("image is referenced in
 *   multiple repositories") unless `force`, which removes them all.
 * - Never deleted: an image with child images ("image has dependent child
 *   images", even forced), one a running container uses (even forced), one
 *   a stopped container uses (unless forced).
 * - Deleting an image releases its layers: every layer it alone kept is
 *   deleted and listed (`Deleted: <chainID>`) after the image. Then, unless
 *   `noPrune`, its parent image is deleted too when that is now an untagged
 *   image without children or containers, and so on up.
 *
 * Conflicts are IN_USE errors with docker's message ("conflict: unable to
 * delete <id> (must be forced) - ...").
 */
import { digestHex } from '../digest/index.js'
import { StrataError, isStrataError } from '../errors/index.js'
import { familiarString, imageChainIds, parseReference, referenceName, withDefaultTag, type ImageID, type Reference } from '../image/index.js'
import type { ChainID } from '../layer/index.js'
import type { Store } from './index.js'
import { containersOf, type ContainerUsageOptions, type ContainersUsing } from './image-query.js'

/** docker's types.ImageDeleteResponseItem: exactly one of the two is set. */
export interface ImageDeleteItem {
  /** A reference removed, familiar (`busybox:latest`). */
  Untagged?: string
  /** An image ID or a layer chainID deleted. */
  Deleted?: string
}

export interface RemoveImageOptions extends ContainerUsageOptions {
  /** `rmi -f`: remove every reference of an image given by ID, and ignore stopped containers. */
  force?: boolean
  /** `rmi --no-prune`: keep untagged parents. */
  noPrune?: boolean
}

const enum Conflict {
  DependentChild = 1,
  ActiveReference = 2,
  StoppedContainer = 4,
  RunningContainer = 8,
  Hard = DependentChild | RunningContainer,
  Soft = ActiveReference | StoppedContainer,
}

class DeleteConflict extends StrataError {
  constructor(
    id: ImageID,
    readonly hard: boolean,
    readonly used: boolean,
    what: string,
  ) {
    super('IN_USE', `conflict: unable to delete ${shortId(id)} (${hard ? 'cannot be forced' : 'must be forced'}) - ${what}`, {
      details: { id, hard, used },
      ...(hard ? {} : { hint: 'force it with rmi -f' }),
    })
  }
}

function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12)
}

/** Untags and/or deletes an image by ID, short ID or reference; see the file header. */
export async function removeImage(store: Store, nameOrId: string, opts: RemoveImageOptions = {}): Promise<ImageDeleteItem[]> {
  const force = opts.force === true
  const using = opts.containersUsing ?? containersOf(store)
  const records: ImageDeleteItem[] = []
  const id = await store.findImage(nameOrId)
  let refs = await store.references.referencesTo(id)
  let quiet = false

  if (!isImageIdPrefix(id, nameOrId)) {
    // A reference was given: it goes first.
    if (!force && isSingleReference(refs)) {
      const user = (await using(id))[0]
      if (user !== undefined) {
        throw new StrataError(
          'IN_USE',
          `conflict: unable to remove repository reference "${nameOrId}" (must force) - container ${shortId(user.id)} is using its referenced image ${shortId(id)}`,
          { details: { id, container: user.id }, hint: 'force it with rmi -f' },
        )
      }
    }
    const ref = withDefaultTag(parseReference(nameOrId))
    await deleteReference(store, ref)
    records.push({ Untagged: familiarString(ref) })
    refs = await store.references.referencesTo(id)
    // The name's last tag is gone: its digest references go with it.
    if (ref.digest === undefined) {
      const name = referenceName(ref)
      if (!refs.some((r) => r.digest === undefined && referenceName(r) === name)) {
        const remaining: Reference[] = []
        for (const r of refs) {
          if (r.digest !== undefined && referenceName(r) === name) {
            await deleteReference(store, r)
            records.push({ Untagged: familiarString(r) })
          } else remaining.push(r)
        }
        refs = remaining
      }
    }
    if (refs.length > 0) return records
    quiet = true
  } else if (isSingleReference(refs)) {
    // An ID with one name: untag it, unless a conflict other than that name forbids deleting.
    const mask = Conflict.Hard | (force ? 0 : Conflict.Soft & ~Conflict.ActiveReference)
    const conflict = await checkConflict(store, using, id, mask)
    if (conflict !== undefined) throw conflict
    for (const r of refs) {
      await deleteReference(store, r)
      records.push({ Untagged: familiarString(r) })
    }
  }
  await deleteHelper(store, using, id, records, { force, prune: opts.noPrune !== true, quiet })
  return records
}

async function deleteHelper(
  store: Store,
  using: ContainersUsing,
  id: ImageID,
  records: ImageDeleteItem[],
  opts: { force: boolean; prune: boolean; quiet: boolean },
): Promise<void> {
  const conflict = await checkConflict(store, using, id, Conflict.Hard | (opts.force ? 0 : Conflict.Soft))
  if (conflict !== undefined) {
    // After an untag, keep the image quietly unless it is now a dangling image nobody uses.
    if (opts.quiet && (!(await isDangling(store, id)) || conflict.used)) return
    throw conflict
  }
  const image = await store.images.get(id)
  const parent = image.parent
  for (const r of await store.references.referencesTo(id)) {
    await deleteReference(store, r)
    records.push({ Untagged: familiarString(r) })
  }
  // Which of its layers existed before, top first: those gone afterwards were deleted with it.
  const chain = imageChainIds(image.config).reverse()
  const before: ChainID[] = []
  for (const c of chain) if (await store.layers.has(c)) before.push(c)
  await store.images.delete(id)
  records.push({ Deleted: id })
  for (const c of before) if (!(await store.layers.has(c))) records.push({ Deleted: c })

  if (!opts.prune || parent === undefined || !(await store.images.exists(parent))) return
  // The parent goes too when nothing needs it; a conflict just stops the walk.
  await deleteHelper(store, using, parent, records, { force: false, prune: true, quiet: true })
}

async function checkConflict(store: Store, using: ContainersUsing, id: ImageID, mask: number): Promise<DeleteConflict | undefined> {
  if (mask & Conflict.DependentChild && (await store.images.children(id)).length > 0) {
    return new DeleteConflict(id, true, false, 'image has dependent child images')
  }
  const users = mask & (Conflict.RunningContainer | Conflict.StoppedContainer) ? await using(id) : []
  const running = users.find((u) => u.running)
  if (mask & Conflict.RunningContainer && running !== undefined) {
    return new DeleteConflict(id, true, true, `image is being used by running container ${shortId(running.id)}`)
  }
  if (mask & Conflict.ActiveReference && (await store.references.referencesTo(id)).length > 0) {
    return new DeleteConflict(id, false, false, 'image is referenced in multiple repositories')
  }
  const stopped = users.find((u) => !u.running)
  if (mask & Conflict.StoppedContainer && stopped !== undefined) {
    return new DeleteConflict(id, false, true, `image is being used by stopped container ${shortId(stopped.id)}`)
  }
  return undefined
}

/** No reference and no child image. */
async function isDangling(store: Store, id: ImageID): Promise<boolean> {
  return (await store.references.referencesTo(id)).length === 0 && (await store.images.children(id)).length === 0
}

/** Removing a reference that is already gone is not an error (another process was first). */
async function deleteReference(store: Store, ref: Reference): Promise<void> {
  try {
    await store.references.delete(ref)
  } catch (err) {
    if (!isStrataError(err, 'NOT_FOUND')) throw err
  }
}

/** Whether the user named the image by (a prefix of) its ID rather than by a reference. */
export function isImageIdPrefix(id: ImageID, given: string): boolean {
  return id.startsWith(given) || digestHex(id).startsWith(given)
}

/**
 * docker's isSingleReference: exactly one reference, or several that are
 * one tag plus digests, all of one name (or digests only, of one name).
 */
function isSingleReference(refs: readonly Reference[]): boolean {
  if (refs.length <= 1) return refs.length === 1
  let single: Reference | undefined
  const canonicalNames = new Set<string>()
  for (const r of refs) {
    if (r.digest !== undefined) canonicalNames.add(referenceName(r))
    else if (single === undefined) single = r
    else return false
  }
  single ??= refs[0]!
  return canonicalNames.size === 1 && canonicalNames.has(referenceName(single))
}

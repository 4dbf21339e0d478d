/**
 * The image list (`docker images`, the API's GET /images/json): one summary
 * per image with its tags and digests, as dockerd 20.10's ImageService.Images
 * builds it:
 * - an image with no reference is listed (with `<none>:<none>` and
 *   `<none>@<none>`) when it is dangling (no child image) or `all` is set;
 *   an untagged image with children is an intermediate image of a build and
 *   only shown with `all`;
 * - a reference filter (`docker images busybox`, `'busy*:1.*'`) keeps the
 *   references matching it (Go's path.Match on the familiar string, or on
 *   the familiar name alone) and drops images with none;
 * - filters as dockerd's `--filter`: `dangling` (true: only untagged
 *   images; false: none of them), `label` (`key` or `key=value`, every one
 *   must hold), `before`/`since` (an image named by reference or ID: only
 *   images created before/after it);
 * - Size is the sum of the `size` of every layer of the image's chain;
 *   SharedSize and Containers are -1 (only `system df` computes them);
 * - newest first.
 */
import { StrataError } from '../errors/index.js'
import { familiarName, familiarString, type Image, type ImageID, type Reference } from '../image/index.js'
import type { Store } from './index.js'
import { unixSeconds } from '../fs/index.js'
import { byCreatedDesc, imageSize, snapshot, type ImageSnapshot } from './image-query.js'
import type { ImageView } from './image-view.js'

/** docker's types.ImageSummary (the API's field names and order). */
export interface ImageSummary {
  /** Containers using the image; -1 when not computed. */
  Containers: number
  /** Unix seconds. */
  Created: number
  Id: ImageID
  Labels: Record<string, string> | null
  /** The parent image ID, or "". */
  ParentId: string
  /** `name@sha256:...`, familiar; `<none>@<none>` for an untagged image. */
  RepoDigests: string[]
  /** `name:tag`, familiar; `<none>:<none>` for an untagged image. */
  RepoTags: string[]
  /** Bytes of the image's layers that other listed images use too; -1 when not computed. */
  SharedSize: number
  Size: number
  /** Same as Size (docker keeps the field for old clients). */
  VirtualSize: number
}

export interface ListImagesOptions {
  /** Also list intermediate images (untagged, with children), as `docker images -a`. */
  all?: boolean
  /** Reference patterns (`docker images REPO[:TAG]`, filter `reference=`); an image is kept when one of its references matches one. */
  reference?: string[]
  /** Filter `dangling=`: true keeps only untagged images, false drops them. */
  dangling?: boolean
  /** Filter `label=`: `key` or `key=value`; an image is kept when all hold. */
  labels?: string[]
  /** Filter `before=`: images (reference or ID) the listed ones must be older than (all of them). */
  before?: string[]
  /** Filter `since=`: images (reference or ID) the listed ones must be newer than (all of them). */
  since?: string[]
}

/** `<none>:<none>` / `<none>@<none>`: what the API puts in an untagged image's lists (and the CLI's test for "dangling"). */
export const NONE_TAG = '<none>:<none>'
export const NONE_DIGEST = '<none>@<none>'

/** Lists images as `docker images` does; see the file header. A long-lived caller passes its ImageView to answer from memory. */
export async function listImages(store: Store, opts: ListImagesOptions = {}, view?: ImageView): Promise<ImageSummary[]> {
  const patterns = (opts.reference ?? []).map(compilePattern)
  const createdOf = async (names: string[] | undefined): Promise<number[]> => {
    const out: number[] = []
    for (const name of names ?? []) out.push(unixSeconds((await store.images.get(await store.findImage(name))).config.created))
    return out
  }
  const [before, since] = await Promise.all([createdOf(opts.before), createdOf(opts.since)])
  const labels = (opts.labels ?? []).map((l) => {
    const eq = l.indexOf('=')
    return eq < 0 ? { key: l } : { key: l.slice(0, eq), value: l.slice(eq + 1) }
  })
  let list = summarize(await (view?.snapshot() ?? snapshot(store)), { all: opts.all === true, patterns, ...(opts.dangling === false ? { excludeDangling: true } : {}) })
  // dockerd keeps an image without tags even when it has digests (its danglingOnly test is on RepoTags).
  if (opts.dangling === true) list = list.filter((s) => s.RepoTags.every((t) => t === NONE_TAG))
  if (labels.length > 0) list = list.filter((s) => labels.every(({ key, value }) => s.Labels !== null && key in s.Labels && (value === undefined || s.Labels[key] === value)))
  if (before.length > 0) list = list.filter((s) => before.every((t) => s.Created < t))
  if (since.length > 0) list = list.filter((s) => since.every((t) => s.Created > t))
  return list
}

/** The list from a snapshot already taken (system df shares it). */
export function summarize(snap: ImageSnapshot, opts: { all: boolean; patterns?: RegExp[]; excludeDangling?: boolean }): ImageSummary[] {
  const patterns = opts.patterns ?? []
  const out: ImageSummary[] = []
  for (const [id, image] of snap.images) {
    const size = imageSize(image, snap.layers)
    // A layer is missing: dockerd skips such an image; `strata check` reports it.
    if (size === undefined) continue
    const repoTags: string[] = []
    const repoDigests: string[] = []
    for (const ref of snap.refs.get(id) ?? []) {
      if (patterns.length > 0 && !patterns.some((p) => familiarMatch(p, ref))) continue
      if (ref.digest !== undefined) repoDigests.push(familiarString(ref))
      else if (ref.tag !== undefined) repoTags.push(familiarString(ref))
    }
    if (repoTags.length === 0 && repoDigests.length === 0) {
      if (patterns.length > 0 || opts.excludeDangling === true) continue
      if (!opts.all && (snap.childCount.get(id) ?? 0) > 0) continue
      repoTags.push(NONE_TAG)
      repoDigests.push(NONE_DIGEST)
    }
    out.push(summary(image, size, repoTags, repoDigests))
  }
  return out.sort((a, b) => byCreatedDesc({ created: a.Created, id: a.Id }, { created: b.Created, id: b.Id }))
}

function summary(image: Image, size: number, repoTags: string[], repoDigests: string[]): ImageSummary {
  return {
    Containers: -1,
    Created: unixSeconds(image.config.created),
    Id: image.id,
    Labels: image.config.config?.Labels ?? null,
    ParentId: image.parent ?? '',
    RepoDigests: repoDigests,
    RepoTags: repoTags,
    SharedSize: -1,
    Size: size,
    VirtualSize: size,
  }
}

/** Whether an API summary is docker's "dangling" image (the CLI's isDangling). */
export function isDanglingSummary(s: ImageSummary): boolean {
  return s.RepoTags.length === 1 && s.RepoTags[0] === NONE_TAG && s.RepoDigests.length === 1 && s.RepoDigests[0] === NONE_DIGEST
}

/** distribution/reference FamiliarMatch: the pattern against the familiar string, else against the familiar name. */
function familiarMatch(pattern: RegExp, ref: Reference): boolean {
  return pattern.test(familiarString(ref)) || pattern.test(familiarName(ref))
}

/**
 * Go's path.Match pattern as an anchored RegExp: `*` is any run of
 * non-`/` characters, `?` one non-`/` character, `[...]` a class (`^`
 * negates, `a-z` ranges), `\` escapes. A malformed pattern is
 * INVALID_ARGUMENT, as Go's ErrBadPattern.
 */
export function compilePattern(pattern: string): RegExp {
  const bad = (): never => {
    throw new StrataError('INVALID_ARGUMENT', `Invalid reference filter "${pattern}": syntax error in pattern`)
  }
  const esc = (c: string): string => c.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&')
  let re = ''
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!
    if (c === '*') re += '[^/]*'
    else if (c === '?') re += '[^/]'
    else if (c === '\\') {
      if (i + 1 >= pattern.length) bad()
      re += esc(pattern[++i]!)
    } else if (c === '[') {
      let j = i + 1
      let cls = '['
      if (pattern[j] === '^') {
        cls += '^'
        j++
      }
      let items = 0
      while (j < pattern.length && (pattern[j] !== ']' || items === 0)) {
        let lo = pattern[j]!
        if (lo === ']' || lo === '-') bad()
        if (lo === '\\') lo = pattern[++j] ?? bad()
        j++
        if (pattern[j] === '-' && pattern[j + 1] !== undefined && pattern[j + 1] !== ']') {
          let hi = pattern[j + 1]!
          j += 2
          if (hi === '\\') hi = pattern[j++] ?? bad()
          if (hi < lo) bad()
          cls += `${esc(lo)}-${esc(hi)}`
        } else {
          cls += esc(lo)
        }
        items++
      }
      if (pattern[j] !== ']' || items === 0) bad()
      re += `${cls}]`
      i = j
    } else re += esc(c)
  }
  return new RegExp(`^${re}$`, 's')
}

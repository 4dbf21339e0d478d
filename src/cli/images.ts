/**
 * `strata images` (also `strata image ls`): docker's image list. One row
 * per tag (and, with --digests, per digest of that name), a row per digest
 * reference whose name has no tag, `<none>` rows for untagged images; the
 * columns, sizes, ages and JSON lines of `docker images` 20.10.
 */
import { parseArgs } from 'node:util'
import { familiarName, parseReference } from '../image/index.js'
import { isDanglingSummary, listImages, type ImageSummary } from '../store/index.js'
import { goTimeString } from '../fs/index.js'
import { dockerTable, humanSize4, humanSizeWithPrecision, jsonLine, since, truncateId } from './docker-format.js'
import { UsageError } from './errors.js'
import type { GlobalOptions } from './global.js'
import type { CommandResult } from './output.js'
import { withStore } from './store.js'

export const IMAGES_HELP = `Usage: strata images [OPTIONS] [REPOSITORY[:TAG]]
       strata image ls [OPTIONS] [REPOSITORY[:TAG]]

List images, newest first: one row per tag, <none> rows for untagged images.
REPOSITORY[:TAG] keeps the matching references (wildcards as in docker: 'busy*').

Options:
  -a, --all          Also show intermediate images (untagged, with children)
      --digests      Show digests
      --no-trunc     Don't truncate output (full image IDs)
  -q, --quiet        Only show image IDs (one per row, as docker prints them)
      --format json  One JSON object per row, as docker's --format '{{json .}}'
`

/** One row of the table: an image under one repository, tag and digest (docker's imageContext). */
interface ImageRow {
  image: ImageSummary
  repo: string
  tag: string
  digest: string
}

export async function imagesCommand(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      all: { type: 'boolean', short: 'a' },
      digests: { type: 'boolean' },
      'no-trunc': { type: 'boolean' },
      quiet: { type: 'boolean', short: 'q' },
      format: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help === true) return IMAGES_HELP
  if (values.format !== undefined && values.format !== 'json') throw new UsageError(`--format takes "json", not "${values.format}"`)
  if (positionals.length > 1) throw new UsageError('"images" takes at most 1 argument: [REPOSITORY[:TAG]]')
  const images = await withStore(global, (store) =>
    listImages(store, { all: values.all === true, ...(positionals[0] === undefined ? {} : { reference: [positionals[0]] }) }),
  )
  const trunc = values['no-trunc'] !== true
  const showDigests = values.digests === true
  const rows = images.flatMap((image) => imageRows(image, showDigests))
  const id = (r: ImageRow): string => (trunc ? truncateId(r.image.Id) : r.image.Id)
  if (values.quiet === true) return rows.map((r) => `${id(r)}\n`).join('')
  const now = Date.now()
  if (values.format === 'json') {
    return rows
      .map((r) =>
        jsonLine({
          Containers: r.image.Containers === -1 ? 'N/A' : String(r.image.Containers),
          CreatedAt: goTimeString(r.image.Created),
          CreatedSince: since(r.image.Created, now),
          Digest: r.digest,
          ID: id(r),
          Repository: r.repo,
          SharedSize: r.image.SharedSize === -1 ? 'N/A' : humanSize4(r.image.SharedSize),
          Size: humanSizeWithPrecision(r.image.Size, 3),
          Tag: r.tag,
          UniqueSize: r.image.SharedSize === -1 ? 'N/A' : humanSize4(r.image.Size - r.image.SharedSize),
          VirtualSize: humanSize4(r.image.VirtualSize),
        }),
      )
      .join('')
  }
  const header = showDigests ? ['REPOSITORY', 'TAG', 'DIGEST', 'IMAGE ID', 'CREATED', 'SIZE'] : ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE']
  return dockerTable([
    header,
    ...rows.map((r) => {
      const size = humanSizeWithPrecision(r.image.Size, 3)
      const created = since(r.image.Created, now)
      return showDigests ? [r.repo, r.tag, r.digest, id(r), created, size] : [r.repo, r.tag, id(r), created, size]
    }),
  ])
}

/**
 * The rows of one image, as docker's CLI makes them: per repository, a row
 * per tag (times each digest of that repository with --digests), then a
 * row per repository that has digests but no tag.
 */
function imageRows(image: ImageSummary, showDigests: boolean): ImageRow[] {
  if (isDanglingSummary(image)) return [{ image, repo: '<none>', tag: '<none>', digest: '<none>' }]
  const tags = new Map<string, string[]>()
  const digests = new Map<string, string[]>()
  for (const s of image.RepoTags) {
    const ref = tryParse(s)
    if (ref?.tag === undefined) continue
    const name = familiarName(ref)
    tags.set(name, [...(tags.get(name) ?? []), ref.tag])
  }
  for (const s of image.RepoDigests) {
    const ref = tryParse(s)
    if (ref?.digest === undefined) continue
    const name = familiarName(ref)
    digests.set(name, [...(digests.get(name) ?? []), ref.digest])
  }
  const rows: ImageRow[] = []
  for (const [repo, repoTags] of tags) {
    const repoDigests = showDigests ? (digests.get(repo) ?? []) : []
    digests.delete(repo)
    for (const tag of repoTags) {
      if (repoDigests.length === 0) rows.push({ image, repo, tag, digest: '<none>' })
      for (const digest of repoDigests) rows.push({ image, repo, tag, digest })
    }
  }
  for (const [repo, repoDigests] of digests) {
    if (showDigests) for (const digest of repoDigests) rows.push({ image, repo, tag: '<none>', digest })
    else rows.push({ image, repo, tag: '<none>', digest: '<none>' })
  }
  return rows
}

function tryParse(s: string): ReturnType<typeof parseReference> | undefined {
  try {
    return parseReference(s)
  } catch {
    return undefined
  }
}

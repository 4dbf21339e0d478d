/**
 * `strata images` (also `strata image ls`): docker's image list. One row
 * per tag (and, with --digests, per digest of that name), a row per digest
 * reference whose name has no tag, `<none>` rows for untagged images; the
 * columns, sizes, ages and JSON lines of `docker images` 20.10, and its
 * --format templates (src/format runs them as docker does).
 */
import { familiarName, parseReference } from '../image/index.js'
import { isDanglingSummary, listImages, type ImageSummary } from '../store/index.js'
import { goTimeString } from '../fs/index.js'
import { humanSize4, humanSizeWithPrecision, since, truncateId } from './docker-format.js'
import { checkArgCount, parseFlags } from './args.js'
import type { GlobalOptions } from './global.js'
import { IMAGE_HEADER, IMAGE_ROW, imageFormat, renderList } from './list-formats.js'
import type { CommandResult } from './output.js'
import { withStore } from './store.js'
import { boolFilterValue, checkFilterKeys, FILTER_FLAG, parseFilterFlags } from './filters.js'

/** The keys dockerd's image list accepts. */
const IMAGE_FILTERS = ['dangling', 'label', 'before', 'since', 'reference']

export const IMAGES_HELP = `Usage: strata images [OPTIONS] [REPOSITORY[:TAG]]
       strata image ls [OPTIONS] [REPOSITORY[:TAG]]

List images, newest first: one row per tag, <none> rows for untagged images.
REPOSITORY[:TAG] keeps the matching references (wildcards as in docker: 'busy*').

Options:
  -a, --all             Also show intermediate images (untagged, with children)
      --digests         Show digests
      --no-trunc        Don't truncate output (full image IDs)
  -q, --quiet           Only show image IDs (one per row, as docker prints them)
  -f, --filter KEY=VAL  Keep what matches: dangling=true|false, reference=PATTERN,
                        label=KEY[=VALUE], before=IMAGE, since=IMAGE (repeatable)
      --format FORMAT   A Go template as docker's: 'table {{.Repository}}\\t{{.ID}}',
                        '{{json .}}', 'json' (one JSON object per row), 'table'.
                        Fields: ID Repository Tag Digest CreatedSince CreatedAt
                        Size Containers VirtualSize SharedSize UniqueSize
`

/** One row of the table: an image under one repository, tag and digest (docker's imageContext). */
interface ImageRow {
  image: ImageSummary
  repo: string
  tag: string
  digest: string
}

export async function imagesCommand(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const { values, positionals } = parseFlags(
    args,
    {
      all: { type: 'boolean', short: 'a' },
      digests: { type: 'boolean' },
      'no-trunc': { type: 'boolean' },
      quiet: { type: 'boolean', short: 'q' },
      format: { type: 'string' },
      filter: FILTER_FLAG,
    },
    IMAGES_HELP,
  )
  checkArgCount(positionals, { max: 1 }, IMAGES_HELP)
  const showDigests = values.digests === true
  const format = imageFormat(values.format === undefined || values.format === '' ? 'table' : values.format, values.quiet === true, showDigests)
  const filters = parseFilterFlags(values.filter)
  checkFilterKeys(filters, IMAGE_FILTERS)
  const dangling = boolFilterValue(filters, 'dangling')
  // docker adds the argument to the reference= filter values (any one may match).
  const references = [...(positionals[0] === undefined ? [] : [positionals[0]]), ...(filters.get('reference') ?? [])]
  const images = await withStore(global, (store) =>
    listImages(store, {
      all: values.all === true,
      ...(references.length === 0 ? {} : { reference: references }),
      ...(dangling === undefined ? {} : { dangling }),
      ...(filters.has('label') ? { labels: filters.get('label')! } : {}),
      ...(filters.has('before') ? { before: filters.get('before')! } : {}),
      ...(filters.has('since') ? { since: filters.get('since')! } : {}),
    }),
    { reading: true },
  )
  const trunc = values['no-trunc'] !== true
  // docker lists digests per tag when they are asked for or the format shows them (needDigest).
  const rows = images.flatMap((image) => imageRows(image, showDigests, showDigests || format.includes('{{.Digest}}')))
  const now = Date.now()
  return renderList(
    format,
    rows.map((r) => ({
      ID: trunc ? truncateId(r.image.Id) : r.image.Id,
      Repository: r.repo,
      Tag: r.tag,
      Digest: r.digest,
      CreatedSince: since(r.image.Created, now),
      CreatedAt: goTimeString(r.image.Created),
      Size: humanSizeWithPrecision(r.image.Size, 3),
      Containers: r.image.Containers === -1 ? 'N/A' : String(r.image.Containers),
      VirtualSize: humanSize4(r.image.VirtualSize),
      SharedSize: r.image.SharedSize === -1 ? 'N/A' : humanSize4(r.image.SharedSize),
      UniqueSize: r.image.SharedSize === -1 ? 'N/A' : humanSize4(r.image.Size - r.image.SharedSize),
    })),
    { type: IMAGE_ROW, header: IMAGE_HEADER },
  )
}

/**
 * The rows of one image, as docker's CLI makes them: per repository, a row
 * per tag (times each digest of that repository when digests are needed),
 * then a row per repository that has digests but no tag (one per digest
 * with --digests, else one with an empty digest).
 */
function imageRows(image: ImageSummary, showDigests: boolean, needDigest: boolean): ImageRow[] {
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
    const repoDigests = needDigest ? (digests.get(repo) ?? []) : []
    digests.delete(repo)
    for (const tag of repoTags) {
      if (repoDigests.length === 0) rows.push({ image, repo, tag, digest: '<none>' })
      for (const digest of repoDigests) rows.push({ image, repo, tag, digest })
    }
  }
  for (const [repo, repoDigests] of digests) {
    if (showDigests) for (const digest of repoDigests) rows.push({ image, repo, tag: '<none>', digest })
    else rows.push({ image, repo, tag: '<none>', digest: '' })
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

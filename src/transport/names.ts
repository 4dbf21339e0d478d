/**
 * Names inside an image archive or layout ("manifest.json",
 * "<v1id>/layer.tar", "blobs/sha256/<hex>") as the sources accept them.
 *
 * Everything a manifest or index names is untrusted: a name is cleaned
 * ("./a//b" is "a/b") and refused with UNSAFE_PATH when it is absolute or
 * has a ".." component anywhere, so that no name can reach outside the
 * archive or the layout directory, whatever resolves it later.
 */
import { StrataError } from '../errors/index.js'

/**
 * The cleaned form of an archive name; "" for the archive's root ("./").
 * `what` names the name's role in messages ("Layer file", "Tar member").
 * @example cleanArchiveName('./abc/layer.tar', 'Layer file') // 'abc/layer.tar'
 * @throws StrataError UNSAFE_PATH for "/etc/passwd", "../x", "a/../b", NUL bytes.
 */
export function cleanArchiveName(name: string, what: string): string {
  if (name.startsWith('/')) {
    throw new StrataError('UNSAFE_PATH', `${what} "${name}" is an absolute path; names in an image archive must be relative to it`, { details: { name } })
  }
  const out: string[] = []
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') throw new StrataError('UNSAFE_PATH', `${what} "${name}" has a ".." component, which could reach outside the image archive`, { details: { name } })
    if (part.includes('\0')) throw new StrataError('UNSAFE_PATH', `${what} "${name}" contains a NUL byte`, { details: { name } })
    out.push(part)
  }
  return out.join('/')
}

/** The directory part of a cleaned name ("" at the top). */
export function dirnameOf(name: string): string {
  const i = name.lastIndexOf('/')
  return i < 0 ? '' : name.slice(0, i)
}

/** The last component of a cleaned name. */
export function basenameOf(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1)
}

/**
 * Where a symlink at archive name `linkName` with target `target` points,
 * as an archive name. Targets are read inside the archive only: an
 * absolute target, or one that climbs above the archive's top, is
 * UNSAFE_PATH (docker's own `docker save` writes `../<v1id>/layer.tar`
 * links for a layer it already wrote, which stay inside).
 */
export function resolveLinkTarget(linkName: string, target: string, what: string): string {
  if (target.startsWith('/')) {
    throw new StrataError('UNSAFE_PATH', `${what} "${linkName}" is a symlink to the absolute path "${target}", outside the image archive`, {
      details: { name: linkName, target },
    })
  }
  const out = dirnameOf(linkName) === '' ? [] : dirnameOf(linkName).split('/')
  for (const part of target.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') {
      if (out.length === 0) {
        throw new StrataError('UNSAFE_PATH', `${what} "${linkName}" is a symlink to "${target}", which points outside the image archive`, {
          details: { name: linkName, target },
        })
      }
      out.pop()
      continue
    }
    out.push(part)
  }
  return out.join('/')
}

/**
 * Scratch directories under os.tmpdir() that are always removed, even when
 * the test fails or throws (a stale tree full of device nodes and setuid
 * files is not something to leave behind).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'

/** Every scratch dir starts with this, so a leftover one is easy to attribute. */
const PREFIX = 'strata-test-'

/** Runs `fn` with a fresh empty directory and removes the directory afterwards, whatever `fn` did. */
export async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), PREFIX + prefix))
  try {
    return await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

/**
 * A fresh empty directory removed when test `t` ends (t.after, Node >= 20.1).
 * Synchronous so it can sit at the top of a test without an await.
 */
export function tempDirFor(t: TestContext, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), PREFIX + prefix))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/**
 * The archive engine against GNU tar on a real Debian rootfs (~200 MiB,
 * ~6,800 entries): applying a layer (plain, gzip, zstd) with tar-split
 * recorded, as the layer store does, vs extracting it; and rebuilding the
 * layer from tar-split vs GNU tar creating it, both hashed.
 */
import { createReadStream, existsSync, mkdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { applyLayer, assembleTar, createTarSplitFile, directoryFileGetter, readTarSplit } from '../src/archive/index.js'
import { Digester } from '../src/digest/index.js'
import { debootstrapTar } from '../test/helpers/debootstrap.js'
import { compare, sh, type CaseResult } from './harness.js'

/** /dev/shm where the machine has it (a tmpfs on Linux), else the temp dir. */
function tmpfsDir(): string {
  return existsSync('/dev/shm') ? '/dev/shm' : tmpdir()
}

export async function archiveBench(work: string, log: (m: string) => void): Promise<CaseResult[]> {
  const tar = await debootstrapTar(log)
  const gz = `${work}/layer.tar.gz`
  const zst = `${work}/layer.tar.zst`
  await sh(`pigz -6 -c ${tar} > ${gz} && zstd -q -3 -c ${tar} > ${zst} && cat ${tar} ${gz} ${zst} > /dev/null`)
  let out = `${work}/out`
  const fresh = async (): Promise<void> => {
    rmSync(out, { recursive: true, force: true })
    mkdirSync(out)
    await sh('sync')
  }
  const strataApply = (file: string) => async (): Promise<void> => {
    const ts = createTarSplitFile(`${out}.tar-split.json.gz`)
    await applyLayer(out, createReadStream(file, { highWaterMark: 1 << 20 }), { whiteouts: 'full', tarSplit: ts.sink })
    await ts.close()
  }
  const gnuX = (pre: string) => async (): Promise<void> => sh(`${pre} tar --xattrs --xattrs-include='*' --numeric-owner -xpf - -C ${out}`)
  const results: CaseResult[] = []
  // The same apply with the target in tmpfs: the disk out of it, so what is left is CPU (the
  // layer tar is in the page cache, read above). applyLayer runs on this thread here; the layer
  // store's loads run it in worker threads, several layers at once (the load section).
  out = join(tmpfsDir(), 'strata-bench-archive-out')
  try {
    log('apply: plain tar into tmpfs')
    results.push(await compare('apply tar (201 MiB) into tmpfs, median of 5', { name: 'strata apply', run: strataApply(tar), prepare: fresh }, [{ name: 'GNU tar -x', run: gnuX(`cat ${tar} |`), prepare: fresh }], 5))
  } finally {
    rmSync(out, { recursive: true, force: true })
    rmSync(`${out}.tar-split.json.gz`, { force: true })
  }
  out = `${work}/out`
  log('apply: plain tar')
  results.push(await compare('apply tar (201 MiB)', { name: 'strata apply', run: strataApply(tar), prepare: fresh }, [{ name: 'GNU tar -x', run: gnuX(`cat ${tar} |`), prepare: fresh }]))
  log('apply: gzip')
  results.push(
    await compare('apply tar.gz', { name: 'strata apply', run: strataApply(gz), prepare: fresh }, [
      { name: 'gzip -dc | tar -x', run: gnuX(`gzip -dc ${gz} |`), prepare: fresh },
      { name: 'pigz -dc | tar -x', run: gnuX(`pigz -dc ${gz} |`), prepare: fresh },
    ]),
  )
  log('apply: zstd')
  results.push(await compare('apply tar.zst', { name: 'strata apply', run: strataApply(zst), prepare: fresh }, [{ name: 'zstd -dc | tar -x', run: gnuX(`zstd -q -dc ${zst} |`), prepare: fresh }]))

  // Leave one applied tree with its tar-split for the rebuild case.
  await fresh()
  await strataApply(tar)()
  log('rebuild from tar-split')
  results.push(
    await compare(
      'rebuild layer tar + sha256',
      {
        name: 'strata assemble',
        run: async () => {
          const d = new Digester()
          await pipeline(assembleTar(readTarSplit(`${out}.tar-split.json.gz`), directoryFileGetter(out)), new Writable({ write: (c: Buffer, _e, cb) => { d.update(c); cb() } }))
        },
      },
      [{ name: 'GNU tar -c | sha256sum', run: () => sh(`tar --format=posix --xattrs --numeric-owner -cf - -C ${out} . | sha256sum`) }],
    ),
  )
  rmSync(out, { recursive: true, force: true })
  return results
}

/**
 * Containers on the ~200 MiB debootstrap image (debian-image.ts), strata's
 * CLI side by side with dockerd 20.10 (overlay2) and podman (overlay), each
 * with the image loaded into its own private store:
 *
 * - create + mount: `strata create` then `strata mount` (RW and init
 *   layers, the union mounted) vs `docker create` (dockerd mounts only at
 *   start, so its create does less) and `podman create` + `podman mount`;
 * - commit of a container that changed one file: `strata commit` vs
 *   `docker commit` vs `podman commit` (the file put in untimed, through
 *   the mount, or `docker cp`);
 * - diff of such a container: `strata diff` vs `docker diff` vs `podman
 *   diff` (both strata and dockerd compare the two mounted trees; strata
 *   walks only what the upper dir holds);
 * - copy-up of a 1 GiB file from an image layer: opening it for writing
 *   through the container's overlay mount (the kernel copies it into the
 *   upper dir), then `sync`: strata's merged dir vs dockerd's, reached
 *   through /proc/PID/root of a running container, vs podman's mount.
 *
 * Every contender is a CLI process, timed whole; containers are removed
 * between runs (untimed).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { sha256Of } from '../src/digest/index.js'
import { run } from '../test/helpers/peers.js'
import { containerPeers } from './container-peers.js'
import { debianImage, type DebianImage } from './debian-image.js'
import { compare, sh, type CaseResult } from './harness.js'
const BIG_TAG = 'bench-big:latest'

/** The debian base layer plus a layer holding /big, 1 GiB of zeros, as a docker-archive. */
async function bigImage(work: string, base: DebianImage, log: (m: string) => void): Promise<string> {
  log('building the 1 GiB layer')
  const dir = join(work, 'big')
  const content = join(dir, 'content')
  mkdirSync(join(dir, 'archive', 'lbig'), { recursive: true })
  mkdirSync(content, { recursive: true })
  await sh(`head -c 1G /dev/zero > ${content}/big`)
  const layer = join(dir, 'archive', 'lbig', 'layer.tar')
  await sh(`tar --format=posix --numeric-owner -C ${content} -cf ${layer} big && rm -rf ${content}`)
  const bigDiffId = `sha256:${(await run('sha256sum', [layer])).stdout.toString().split(' ')[0]!}`
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/bin/bash'] },
      rootfs: { type: 'layers', diff_ids: [base.diffIds[0], bigDiffId] },
      history: [{ created_by: 'debian base' }, { created_by: 'a 1 GiB file' }],
    }),
  )
  const hex = sha256Of(config).slice(7)
  writeFileSync(join(dir, 'archive', `${hex}.json`), config)
  await sh(`mkdir -p ${dir}/archive/l0 && ln ${base.layerFiles[0]} ${dir}/archive/l0/layer.tar`)
  writeFileSync(join(dir, 'archive', 'manifest.json'), JSON.stringify([{ Config: `${hex}.json`, RepoTags: [BIG_TAG], Layers: ['l0/layer.tar', 'lbig/layer.tar'] }]))
  const archive = join(dir, 'big.tar')
  await sh(`tar -C ${dir}/archive -cf ${archive} manifest.json ${hex}.json l0 lbig && rm -rf ${dir}/archive`)
  return archive
}

export async function containerBench(work: string, log: (m: string) => void): Promise<CaseResult[]> {
  const image = await debianImage(work, log)
  const big = await bigImage(work, image, log)
  const cleanups: Array<() => Promise<void> | void> = []
  try {
    const { strata, docker, podman, removeAll } = await containerPeers(work, [image.archive, big], cleanups, log)
    const results: CaseResult[] = []

    log('create + mount')
    results.push(
      await compare(
        'create a container and mount its rootfs (debian 201 MiB), median of 7',
        { name: 'strata create + strata mount', prepare: removeAll, run: async () => void (await strata('mount', await strata('create', image.tag, 'true'))) },
        [
          { name: 'docker create (dockerd 20.10, overlay2; mounts at start)', prepare: removeAll, run: async () => void (await docker('create', image.tag, 'true')) },
          { name: 'podman create + podman mount (overlay)', prepare: removeAll, run: async () => void (await podman('mount', await podman('create', image.tag, 'true'))) },
        ],
        7,
      ),
    )

    log('commit of a 1-file change')
    const file = join(work, 'changed.txt')
    writeFileSync(file, 'one changed file\n')
    results.push(
      await compare(
        'commit a container that added one file, median of 5',
        {
          name: 'strata commit',
          prepare: async () => {
            await removeAll()
            const id = await strata('create', '--name', 'bench-c', image.tag, 'true')
            await sh(`cp ${file} ${await strata('mount', id)}/changed.txt`)
            await strata('umount', id)
          },
          run: async () => void (await strata('commit', 'bench-c')),
        },
        [
          {
            name: 'docker commit (dockerd 20.10)',
            prepare: async () => {
              await removeAll()
              await docker('create', '--name', 'bench-c', image.tag, 'true')
              await docker('cp', file, 'bench-c:/changed.txt')
            },
            run: async () => void (await docker('commit', 'bench-c')),
          },
          {
            name: 'podman commit (overlay)',
            prepare: async () => {
              await removeAll()
              const id = await podman('create', '--name', 'bench-c', image.tag, 'true')
              await sh(`cp ${file} ${await podman('mount', id)}/changed.txt`)
              await podman('umount', id)
            },
            run: async () => void (await podman('commit', '-q', 'bench-c')),
          },
        ],
        5,
      ),
    )

    log('diff of a 1-file change')
    // One container per contender, made by the first prepare and kept for every run.
    const once = (make: () => Promise<void>): (() => Promise<void>) => {
      let made: Promise<void> | undefined
      return () => (made ??= make())
    }
    await removeAll()
    results.push(
      await compare(
        'diff (docker diff) of a container that added one file (debian 201 MiB), median of 5',
        {
          name: 'strata diff',
          prepare: once(async () => {
            const id = await strata('create', '--name', 'bench-d', image.tag, 'true')
            await sh(`cp ${file} ${await strata('mount', id)}/etc/changed.txt`)
            await strata('umount', id)
          }),
          run: async () => void (await strata('diff', 'bench-d')),
        },
        [
          {
            name: 'docker diff (dockerd 20.10, overlay2)',
            prepare: once(async () => {
              await docker('create', '--name', 'bench-d', image.tag, 'true')
              await docker('cp', file, 'bench-d:/etc/changed.txt')
            }),
            run: async () => void (await docker('diff', 'bench-d')),
          },
          {
            name: 'podman diff (overlay)',
            prepare: once(async () => {
              const id = await podman('create', '--name', 'bench-d', image.tag, 'true')
              await sh(`cp ${file} ${await podman('mount', id)}/etc/changed.txt`)
              await podman('umount', id)
            }),
            run: async () => void (await podman('diff', 'bench-d')),
          },
        ],
        5,
      ),
    )

    log('copy-up of a 1 GiB file')
    let target = ''
    const copyUp = async (): Promise<void> => sh(`dd if=/dev/zero of=${target} bs=4096 count=1 conv=notrunc status=none && sync`)
    results.push(
      await compare(
        'copy-up: open a 1 GiB image file for writing through the container mount, then sync, median of 3',
        {
          name: 'strata (overlay2 mount from strata mount)',
          prepare: async () => {
            await removeAll()
            target = `${await strata('mount', await strata('create', BIG_TAG, 'true'))}/big`
          },
          run: copyUp,
        },
        [
          {
            name: 'dockerd 20.10 overlay2 (a running container, via /proc/PID/root)',
            prepare: async () => {
              await removeAll()
              const id = await docker('run', '-d', '--network', 'none', BIG_TAG, 'sleep', '3600')
              target = `/proc/${await docker('inspect', '-f', '{{.State.Pid}}', id)}/root/big`
            },
            run: copyUp,
          },
          {
            name: 'podman overlay (podman mount)',
            prepare: async () => {
              await removeAll()
              target = `${await podman('mount', await podman('create', BIG_TAG, 'true'))}/big`
            },
            run: copyUp,
          },
        ],
        3,
      ),
    )
    await removeAll()
    return results
  } finally {
    for (const fn of cleanups.reverse()) await fn()
  }
}

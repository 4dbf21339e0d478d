/**
 * The Engine API: the same docker CLI binary (/usr/bin/docker, 20.10)
 * pointed at dockerd 20.10 (overlay2) and at `strata serve` (overlay2),
 * each on its own data root holding the same images (the 3-layer debian
 * image and a busybox one), side by side:
 *
 * - `docker images`: the list, with both servers warm;
 * - `docker create debian true`: a container made (dockerd mounts nothing
 *   at create either), the containers removed between runs;
 * - `docker run --rm --network none busybox true`: create, attach, start,
 *   wait and the removal, one client;
 * - `docker pull` of the debian image from a local distribution registry
 *   (skopeo pushed it; gzip'd layers), the image removed between runs.
 *
 * Target (issue 16): strata ≤ 0.5× dockerd on create and images. The same
 * client against a stub that answers `_ping`, the image list and create
 * with canned bytes is the floor row: what the docker CLI costs by itself
 * (process start, config, two requests), which neither server can go
 * below.
 */
import { mkdirSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { join } from 'node:path'
import { busyboxRootfsTar, httpUnix, startStrataServe } from '../test/helpers/api-server.js'
import { startDockerd } from '../test/helpers/dockerd.js'
import { run } from '../test/helpers/peers.js'
import { push, startRegistry } from '../test/helpers/registry.js'
import { benchContext, debianImage } from './debian-image.js'
import { compare, type CaseResult } from './harness.js'

const DOCKER = '/usr/bin/docker'

/**
 * The client's floor: an HTTP server on a unix socket that answers what
 * `docker images` and `docker create` ask (`_ping`, the image list as
 * strata answered it, a container ID) without doing anything, with
 * dockerd's headers.
 */
async function startStub(socket: string, imagesJson: string): Promise<Server> {
  const headers = { 'Api-Version': '1.41', 'Docker-Experimental': 'false', Ostype: 'linux', Server: 'Docker/20.10 (linux)' }
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      const path = (req.url ?? '').replace(/^\/v1\.\d+/, '').split('?')[0]
      if (path === '/_ping') return res.writeHead(200, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' }).end(req.method === 'HEAD' ? undefined : 'OK')
      if (path === '/images/json') return res.writeHead(200, { ...headers, 'Content-Type': 'application/json' }).end(imagesJson)
      if (path === '/containers/create') return res.writeHead(201, { ...headers, 'Content-Type': 'application/json' }).end(`{"Id":"${'0'.repeat(64)}","Warnings":[]}\n`)
      res.writeHead(404, { 'Content-Type': 'application/json' }).end('{"message":"page not found"}\n')
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(socket, () => resolve())
  })
  return server
}

export async function apiBench(work: string, log: (m: string) => void): Promise<CaseResult[]> {
  const image = await debianImage(work, log)
  const cleanups: Array<() => Promise<void> | void> = []
  const ctx = benchContext(cleanups, log)
  try {
    const dockerd = await startDockerd(ctx, { storageDriver: 'overlay2', dataRoot: join(work, 'dockerd') })
    mkdirSync(join(work, 'strata'))
    const serve = await startStrataServe(ctx, { root: join(work, 'strata'), driver: 'overlay2' })
    const stubSocket = join(work, 'stub.sock')
    const clients = {
      dockerd: (args: string[]) => run(DOCKER, ['-H', dockerd.host, ...args], { env: { ...serve.clientEnv(), DOCKER_HOST: dockerd.host } }),
      strata: (args: string[]) => run(DOCKER, args, { env: serve.clientEnv() }),
      stub: (args: string[]) => run(DOCKER, args, { env: { ...serve.clientEnv(), DOCKER_HOST: `unix://${stubSocket}` } }),
    }
    const both = async (args: string[]): Promise<void> => {
      await clients.dockerd(args)
      await clients.strata(args)
    }
    log('loading the debian image into both through docker load')
    await both(['load', '-q', '-i', image.archive])
    const busybox = await busyboxRootfsTar(ctx)
    for (const server of ['dockerd', 'strata'] as const) {
      await run(DOCKER, server === 'dockerd' ? ['-H', dockerd.host, 'import', '-', 'busybox:latest'] : ['import', '-', 'busybox:latest'], { env: { ...serve.clientEnv(), ...(server === 'dockerd' ? { DOCKER_HOST: dockerd.host } : {}) }, input: busybox })
    }
    const registryDir = join(work, 'registry')
    mkdirSync(registryDir)
    const host = await startRegistry(ctx, registryDir)
    const ref = `${host}/bench/debian:1`
    log(`pushing the image to ${ref} with skopeo`)
    const tmp = join(work, 'skopeo-tmp')
    mkdirSync(tmp)
    await push(image.archive, ref, tmp)
    await both(['images'])
    const imagesJson = (await httpUnix(serve.socket, 'GET', '/v1.41/images/json')).text
    const stub = await startStub(stubSocket, imagesJson)
    cleanups.push(() => new Promise<void>((resolve) => stub.close(() => resolve())))

    const results: CaseResult[] = []
    const contender = (name: string, server: keyof typeof clients, args: string[], prepare?: () => Promise<void>): { name: string; run: () => Promise<void>; prepare?: () => Promise<void> } => ({
      name,
      run: async () => void (await clients[server](args)),
      ...(prepare === undefined ? {} : { prepare }),
    })

    log('docker images')
    const FLOOR = 'floor: docker → a stub answering canned bytes (the client alone)'
    results.push(
      await compare('docker images (2 images), median of 11', contender('docker → strata serve', 'strata', ['images']), [contender('docker → dockerd 20.10', 'dockerd', ['images']), contender(FLOOR, 'stub', ['images'])], 11),
    )

    log('docker create')
    const removeAll = (server: keyof typeof clients) => async (): Promise<void> => {
      const ids = (await clients[server](['ps', '-aq'])).stdout.toString().split('\n').filter(Boolean)
      if (ids.length > 0) await clients[server](['rm', '-f', ...ids])
    }
    results.push(
      await compare(
        'docker create debian true, median of 11',
        contender('docker → strata serve', 'strata', ['create', image.tag, 'true'], removeAll('strata')),
        [contender('docker → dockerd 20.10', 'dockerd', ['create', image.tag, 'true'], removeAll('dockerd')), contender(FLOOR, 'stub', ['create', image.tag, 'true'])],
        11,
      ),
    )
    await removeAll('strata')()
    await removeAll('dockerd')()

    log('docker run --rm')
    const runArgs = ['run', '--rm', '--network', 'none', 'busybox', 'true']
    results.push(
      await compare('docker run --rm --network none busybox true, median of 7', contender('docker → strata serve', 'strata', runArgs), [contender('docker → dockerd 20.10', 'dockerd', runArgs)], 7),
    )

    log('docker pull')
    const rmiPulled = (server: keyof typeof clients) => async (): Promise<void> => {
      await clients[server](['rmi', '-f', ref]).catch(() => {})
      await clients[server](['rmi', '-f', image.tag]).catch(() => {})
    }
    results.push(
      await compare(
        `docker pull of the debian image (3 layers, gzip'd) from a local registry, median of 3`,
        contender('docker → strata serve', 'strata', ['pull', '-q', ref], rmiPulled('strata')),
        [contender('docker → dockerd 20.10', 'dockerd', ['pull', '-q', ref], rmiPulled('dockerd'))],
        3,
      ),
    )
    return results
  } finally {
    for (const c of cleanups.reverse()) await c()
  }
}

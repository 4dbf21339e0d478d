/**
 * strata's containers against dockerd 20.10's, on the same image and the
 * same steps, on overlay2 and on vfs. For each change set a container is
 * created (its diff is empty), started (its process makes the changes and
 * exits: the container is stopped), then `docker diff` is compared with
 * containerChanges (as sets: docker prints them in map order), and the
 * layer `docker commit` made (read back with `docker save`) with the one
 * commitContainer made, header by header and byte by byte.
 *
 * The layers can only be the same bytes where the times are the same:
 * after the run and before the commit, everything the layer will carry is
 * given one fixed mtime (with nanoseconds, which both must drop), on both
 * sides alike: on overlay2 every entry of the container's upper dir,
 * whiteouts included; on vfs every path the diff lists as added or
 * changed. One difference is left, and only on vfs: dockerd stamps the
 * whiteout of a deletion with the current time, strata with 0; those two
 * header fields are blanked before the bytes are compared.
 *
 * The change sets: the one from the issue (a file rewritten in a
 * directory the image has: `docker diff` lists that directory as changed
 * although its copy-up kept mode, size and mtime), the walk-through of the
 * reference articles (create, start, a process writes a big file, stop,
 * commit), whiteouts and an opaque dir, and one file of each kind with
 * headers that need PAX records (long and non-ASCII names, long link
 * targets, big ids, a capability), hardlinks, devices and names looked up
 * on the host. Last, the /etc files a container sees: dockerd's
 * /etc/hostname is the same short-ID form.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { test, type TestContext } from 'node:test'
import { readTar } from '../src/archive/tar/index.js'
import { commitContainer, containerChanges, createContainer } from '../src/container/index.js'
import type { Store } from '../src/store/index.js'
import { lsetxattr, lutimens, type Timespec } from '../src/sys/index.js'
import { containerEnv, loadImage, startToExit } from './helpers/container-env.js'
import { IMAGE_TAG, readDockerArchive, threeLayerArchive } from './helpers/docker-image.js'
import { requireDockerd, startDockerd, type Dockerd } from './helpers/dockerd.js'
import { CAP_NET_RAW_EP } from './helpers/fixtures.js'
import { requireRoot, requireTool } from './helpers/peers.js'
import { tempDirFor } from './helpers/tmp.js'

/** What a process sees of its environment and /etc files (the hostname, which differs by ID, left out). */
const PROBE = 'cat /etc/hosts /etc/resolv.conf; env | grep -v ^HOSTNAME= | sort; stat -c "%n %a %s" /etc/hosts /etc/resolv.conf /etc/hostname /.dockerenv; ulimit -n; id'

/** The 3-layer image plus a layer with a directory to write into and a tree to remove. */
const DIFF_TAG = 'strata-test-diff:latest'
const DOCKERFILE = `FROM ${IMAGE_TAG}
RUN mkdir -p /data/keep /srv/tree/sub && echo a > /data/keep/a.txt && echo b > /data/keep/b.txt && echo x > /srv/tree/sub/x && echo y > /srv/tree/y && echo o > /srv/other
`

/** The one mtime everything a layer carries gets before the commit; its nanoseconds must not reach the tar. */
const PINNED: Timespec = { sec: 1_700_000_000, nsec: 123_456_789 }

/** A revision 3 capability (root uid 1000): dockerd writes it as the revision 2 CAP_NET_RAW_EP. */
const CAP_V3 = Buffer.concat([Buffer.from('01000003', 'hex'), CAP_NET_RAW_EP.subarray(4), Buffer.from([0xe8, 0x03, 0, 0])])

interface Scenario {
  name: string
  script: string
  /** Edits made from the host to the container's files after the run, before the diff (`root`: the upper dir on overlay2, the whole tree on vfs). */
  fromHost?: (root: string) => void
  /** Lines `docker diff` must list (the point of the scenario), checked on top of the equality with strata's. */
  mustList?: string[]
}

const LONG = 'l'.repeat(120)
const P = 'p'.repeat(60)
const Q = 'q'.repeat(60)

const SCENARIOS: Scenario[] = [
  {
    name: 'the issue: rewrite a file in an image dir, remove a file, add a dir, remove a tree',
    script: 'echo more >> /data/keep/a.txt && rm /data/one && mkdir /newdir && rm -rf /srv/tree',
    mustList: ['C /data/keep', 'C /data/keep/a.txt', 'D /srv/tree', 'A /newdir'],
  },
  {
    name: 'the reference walk-through: a process writes a big file',
    script: 'dd if=/dev/zero of=/bigfile bs=1M count=8 2>/dev/null && mkdir -p /root/work && echo done > /root/work/log',
    mustList: ['A /bigfile', 'C /root', 'A /root/work/log'],
  },
  {
    name: 'whiteouts, a replaced (opaque) dir, new dirs',
    script: 'echo hello > /data/new && rm /data/one && rm -rf /home && mkdir /home && echo x > /home/x && mkdir -p /var/new/deep && rm /bin/vi',
    mustList: ['C /home', 'D /home/new', 'A /home/x', 'D /bin/vi'],
  },
  {
    name: 'every kind of entry and header',
    script: [
      `mkdir -p /data/deep/${P}/${Q} && echo s > /data/deep/${P}/${Q}/${'f'.repeat(50)}`,
      `echo n > /data/${LONG}`,
      `mkdir /data/${LONG}d && echo y > /data/${LONG}d/inner`,
      "echo u > '/data/héllo wörld'",
      `ln -s ${'t'.repeat(150)} /data/longlink`,
      "ln -s '/data/héllo wörld' /data/ulink",
      'echo h > /data/hl1 && ln /data/hl1 /data/hl2',
      'ln /data/keep/b.txt /data/keep/b-link',
      'mkfifo /data/fifo',
      'mknod /data/null c 1 3',
      'echo s > /data/suid && chmod 4755 /data/suid',
      'mkdir /data/sticky && chmod 1777 /data/sticky',
      'echo o > /data/owned && chown 1000:1000 /data/owned',
      'echo b > /data/bigid && chown 3000000:3000000 /data/bigid',
      'echo n > /data/nobody && chown 65534:65534 /data/nobody',
      'echo c > /data/caps',
    ].join(' && '),
    fromHost: (root) => {
      lsetxattr(join(root, 'data/caps'), 'security.capability', CAP_V3)
      lsetxattr(join(root, 'data/caps'), 'user.note', 'dockerd carries only security.capability')
    },
    mustList: ['A /data/hl2', 'A /data/keep/b-link', 'A /data/fifo', 'A /data/null'],
  },
]

/** Go's byte order of paths (docker diff prints in no particular order). */
const byPath = (a: string, b: string): number => Buffer.compare(Buffer.from(a.slice(2)), Buffer.from(b.slice(2)))

function lines(out: string): string[] {
  return out.split('\n').filter((l) => l !== '').sort(byPath)
}

/** Every path below `root` (not `root` itself), relative. */
function walk(root: string, rel = ''): string[] {
  const out: string[] = []
  for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
    const child = rel === '' ? e.name : `${rel}/${e.name}`
    out.push(child)
    if (e.isDirectory()) out.push(...walk(root, child))
  }
  return out
}

/**
 * Gives what the commit will carry one mtime: on overlay2 every entry of
 * the upper dir, on vfs every path listed as added or changed.
 */
function pinTimes(driver: string, root: string, changes: string[]): void {
  const paths = driver === 'overlay2' ? walk(root) : changes.filter((l) => !l.startsWith('D ')).map((l) => l.slice(3))
  for (const rel of paths) lutimens(join(root, rel), PINNED, PINNED)
}

/** Where a container's files are on the host, for `driver` under `driverHome` (`<data-root>/<driver>`). */
function containerFiles(driver: string, driverHome: string, mountId: string): string {
  return driver === 'overlay2' ? join(driverHome, mountId, 'diff') : join(driverHome, 'dir', mountId)
}

const isWhiteout = (name: string): boolean => name.replace(/^.*\//, '').startsWith('.wh.')

/** One readable line per entry of a layer tar: every header field and the content's hash. */
async function describeLayer(tar: Buffer, blankWhiteoutTimes: boolean): Promise<string[]> {
  const out: string[] = []
  for await (const e of readTar(Readable.from([tar]))) {
    const hash = createHash('sha256')
    for await (const c of e.body()) hash.update(c)
    const h = e.header
    const mtime = blankWhiteoutTimes && isWhiteout(h.name) ? '-' : `${h.mtime.sec}.${h.mtime.nsec}`
    const xattrs = [...h.xattrs].map(([k, v]) => `${k}=${v.toString('hex')}`).join(',')
    const pax = [...h.pax].filter(([k]) => !k.startsWith('SCHILY.xattr.') && !(blankWhiteoutTimes && k === 'mtime' && isWhiteout(h.name))).map(([k, v]) => `${k}=${v}`)
    out.push(
      `${h.type} ${JSON.stringify(h.name)} mode=${h.mode.toString(8)} ${h.uid}:${h.gid} ${h.uname}:${h.gname} size=${h.size} mtime=${mtime} link=${JSON.stringify(h.linkname)} dev=${h.devmajor},${h.devminor} xattrs=[${xattrs}] pax=[${pax.join(',')}] sha256=${hash.digest('hex').slice(0, 16)}`,
    )
  }
  return out
}

/** A copy of a layer tar with the mtime and checksum fields of whiteout headers zeroed. */
function blankWhiteoutTimes(tar: Buffer): Buffer {
  const out = Buffer.from(tar)
  for (let off = 0; off + 512 <= out.length; ) {
    const block = out.subarray(off, off + 512)
    if (block.every((b) => b === 0)) break
    const size = parseInt(block.toString('latin1', 124, 136).replace(/\0.*$/s, '').trim() || '0', 8)
    const prefix = block.toString('latin1', 345, 500).replace(/\0.*$/s, '')
    const name = block.toString('latin1', 0, 100).replace(/\0.*$/s, '')
    if (String.fromCharCode(block[156]!) !== 'x' && isWhiteout(prefix === '' ? name : `${prefix}/${name}`)) block.fill(0, 136, 156)
    off += 512 + Math.ceil(size / 512) * 512
  }
  return out
}

interface Outcome {
  /** `docker diff` of the created container, before it ran. */
  before: string[]
  after: string[]
  layer: Buffer
  diffId: string
}

async function dockerSide(t: TestContext, dockerd: Dockerd, driver: string, dir: string, s: Scenario, n: number): Promise<Outcome> {
  const name = `scenario-${n}`
  const id = (await dockerd.docker(['container', 'create', '--name', name, '--network', 'none', DIFF_TAG, 'sh', '-c', s.script])).stdout.toString().trim()
  const before = lines((await dockerd.docker(['diff', name])).stdout.toString())
  await dockerd.docker(['container', 'start', '-a', name])
  await dockerd.docker(['container', 'stop', name])
  const mountId = readFileSync(join(dockerd.dataRoot, 'image', driver, 'layerdb', 'mounts', id, 'mount-id'), 'utf8').trim()
  const files = containerFiles(driver, join(dockerd.dataRoot, driver), mountId)
  s.fromHost?.(files)
  const after = lines((await dockerd.docker(['diff', name])).stdout.toString())
  pinTimes(driver, files, after)
  const imageId = (await dockerd.docker(['container', 'commit', name])).stdout.toString().trim()
  const archive = join(dir, `${name}.tar`)
  await dockerd.docker(['save', '-o', archive, imageId])
  const saved = await readDockerArchive(archive)
  t.diagnostic(`${driver} ${s.name}: docker diff ${after.length} lines, layer ${saved.layers.at(-1)!.length} bytes`)
  return { before, after, layer: saved.layers.at(-1)!, diffId: saved.diffIds.at(-1)! }
}

async function strataSide(store: Store, driver: string, s: Scenario): Promise<Outcome> {
  const c = await createContainer(store, DIFF_TAG, { cmd: ['sh', '-c', s.script] })
  const format = (changes: Array<{ kind: string; path: string }>): string[] => changes.map((ch) => `${ch.kind} ${ch.path}`)
  const before = format(await containerChanges(store, c.id))
  assert.equal((await startToExit(store, c.id)).code, 0, `${s.name}: the script ran`)
  const { mountId } = await store.layers.getMount(c.id)
  const files = containerFiles(driver, join(store.root, driver), mountId)
  s.fromHost?.(files)
  const after = format(await containerChanges(store, c.id))
  pinTimes(driver, files, after)
  const commit = await commitContainer(store, c.id)
  const image = await store.images.get(commit.imageId)
  const exported = await store.layers.export(store.layers.chainOf(image.config.rootfs.diff_ids))
  const chunks: Buffer[] = []
  for await (const chunk of exported.stream) chunks.push(chunk as Buffer)
  assert.equal((await exported.verified).matches, true)
  return { before, after, layer: Buffer.concat(chunks), diffId: commit.diffId }
}

for (const driver of ['overlay2', 'vfs'] as const) {
  test(`docker diff and docker commit, strata diff and commit: the same lines and the same layer bytes (${driver})`, async (t) => {
    if (!requireRoot(t) || !requireTool(t, 'runc', 'busybox', 'tar') || !requireDockerd(t)) return
    const base = await threeLayerArchive(t)
    const dir = tempDirFor(t, `container-dockerd-${driver}-`)

    const dockerd = await startDockerd(t, { storageDriver: driver })
    const docker: Outcome[] = []
    let dockerHostname: string
    let dockerProbe: string
    try {
      await dockerd.docker(['load', '-i', base])
      const context = join(dir, 'context')
      mkdirSync(context)
      writeFileSync(join(context, 'Dockerfile'), DOCKERFILE)
      await dockerd.docker(['build', '--network', 'none', '-q', '-t', DIFF_TAG, context])
      await dockerd.docker(['save', '-o', join(dir, 'image.tar'), DIFF_TAG])
      for (const [n, s] of SCENARIOS.entries()) docker.push(await dockerSide(t, dockerd, driver, dir, s, n))
      dockerHostname = (await dockerd.docker(['run', '--rm', '--network', 'none', IMAGE_TAG, 'cat', '/etc/hostname'])).stdout.toString()
      dockerProbe = (await dockerd.docker(['run', '--rm', '--network', 'none', IMAGE_TAG, 'sh', '-c', PROBE])).stdout.toString()
    } finally {
      await dockerd.stop()
    }

    const env = await containerEnv(t, driver)
    await loadImage(env.store, await readDockerArchive(join(dir, 'image.tar')), DIFF_TAG)
    for (const [n, s] of SCENARIOS.entries()) {
      const want = docker[n]!
      const got = await strataSide(env.store, driver, s)
      assert.deepEqual(want.before, [], `${s.name}: docker diff of a created container is empty`)
      assert.deepEqual(got.before, [], `${s.name}: strata's too`)
      assert.deepEqual(got.after, want.after, `${s.name}: strata diff lists what docker diff lists`)
      for (const line of s.mustList ?? []) assert.ok(want.after.includes(line), `${s.name}: docker diff lists "${line}"`)

      // vfs: dockerd's whiteouts carry the time of the commit, strata's 0.
      const blank = driver === 'vfs'
      assert.deepEqual(await describeLayer(got.layer, blank), await describeLayer(want.layer, blank), `${s.name}: the committed layer's entries and headers`)
      if (blank) {
        assert.ok(blankWhiteoutTimes(got.layer).equals(blankWhiteoutTimes(want.layer)), `${s.name}: the committed layer's bytes, whiteout times aside`)
      } else {
        assert.ok(got.layer.equals(want.layer), `${s.name}: the committed layer's bytes`)
        assert.equal(got.diffId, want.diffId, `${s.name}: the committed layer's diffID`)
      }
    }

    assert.match(dockerHostname, /^[a-f0-9]{12}\n$/, 'dockerd writes the short ID and a newline, as strata does')
    const probe = await createContainer(env.store, IMAGE_TAG, { cmd: ['sh', '-c', PROBE] })
    let strataProbe = ''
    const { code, stdout } = await startToExit(env.store, probe.id)
    strataProbe += stdout
    assert.equal(code, 0)
    assert.equal(strataProbe, dockerProbe, 'hosts, resolv.conf, env, file modes, limits and user as in a docker container')
  })
}

/**
 * docker rename, pause, unpause and stats through `strata serve`, with the
 * real docker CLIs (20.10 /usr/bin/docker and the 28.x static client),
 * and GET /containers/{id}/stats read raw: stream=false (two readings a
 * second apart), one-shot, the stream (each record's precpu_stats is the
 * one before's cpu_stats), a container that does not run (dockerd's zero
 * record). The shapes are compared with a private dockerd 20.10 running
 * the same busybox container on this host (same cgroup layout), key by
 * key; the numbers are checked against the container's cgroup files.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { request } from 'node:http'
import { totalmem } from 'node:os'
import { test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { DOCKER_20, DOCKER_28, busyboxRootfsTar, httpUnix, importBusybox, dockerOn, startStrataServe } from './helpers/api-server.js'
import { requireDockerd, startDockerd } from './helpers/dockerd.js'
import { requireRoot, requireTool } from './helpers/peers.js'
import { strata } from './helpers/strata-cli.js'

function canRun(t: TestContext): boolean {
  return requireRoot(t) && requireTool(t, 'busybox', 'tar', 'runc', DOCKER_28) && requireDockerd(t)
}

/** A JSON value's shape: object keys in order with their shapes, an array's first element's, a value's type. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.length === 0 ? [] : [shape(v[0])]
  if (v !== null && typeof v === 'object') return Object.entries(v).map(([k, x]) => [k, shape(x)])
  return v === null ? 'null' : typeof v
}

interface Stats {
  read: string
  preread: string
  pids_stats: { current?: number }
  cpu_stats: { cpu_usage: { total_usage: number; percpu_usage?: number[] }; system_cpu_usage?: number; online_cpus?: number }
  precpu_stats: { cpu_usage: { total_usage: number }; system_cpu_usage?: number }
  memory_stats: { usage?: number; limit?: number; stats?: Record<string, number> }
  name: string
  id: string
}

/** The first `n` records of a stats stream, then the connection closed (as a client that stops watching). */
function streamRecords(socket: string, path: string, n: number): Promise<Stats[]> {
  return new Promise((resolve, reject) => {
    const out: Stats[] = []
    let buf = ''
    const req = request({ socketPath: socket, path, headers: { Host: 'docker' } }, (res) => {
      res.on('data', (c: Buffer) => {
        buf += c.toString()
        let nl
        while ((nl = buf.indexOf('\n')) >= 0) {
          out.push(JSON.parse(buf.slice(0, nl)) as Stats)
          buf = buf.slice(nl + 1)
          if (out.length === n) {
            req.destroy()
            resolve(out)
            return
          }
        }
      })
      res.on('error', () => {})
    })
    req.on('error', (err) => (out.length === n ? undefined : reject(err)))
    req.end()
  })
}

/** The memory cgroup directory of `pid` (v1 on this host's hybrid layout, v2 otherwise). */
function memoryCgroupUsage(pid: number): number | undefined {
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')
  const v1 = lines.find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l))
  try {
    if (v1 !== undefined) return Number(readFileSync(`/sys/fs/cgroup/memory${v1.split(':')[2]}/memory.usage_in_bytes`, 'utf8'))
    const v2 = lines.find((l) => l.startsWith('0::'))!.slice(3)
    return Number(readFileSync(`/sys/fs/cgroup${v2}/memory.current`, 'utf8'))
  } catch {
    return undefined
  }
}

test('docker rename, pause, unpause through strata serve (20.10 and 28), with their events', async (t) => {
  if (!canRun(t)) return
  const s = await startStrataServe(t)
  await importBusybox(t, s.root)
  for (const bin of [DOCKER_20, DOCKER_28]) {
    const ok = async (args: string[]): Promise<string> => {
      const r = await dockerOn(s, args, bin)
      assert.equal(r.code, 0, `${bin} ${args.join(' ')}: ${r.stderr}`)
      return r.stdout
    }
    const fails = async (args: string[], message: RegExp): Promise<void> => {
      const r = await dockerOn(s, args, bin)
      assert.notEqual(r.code, 0, `${bin} ${args.join(' ')} should fail`)
      assert.match(r.stderr, message)
    }
    const since = String(Math.floor(Date.now() / 1000) - 1)
    const id = (await ok(['run', '-d', '--name', 'r1', 'busybox', 'sleep', '300'])).trim()
    await ok(['create', '--name', 'other', 'busybox', 'true'])
    await ok(['rename', 'r1', 'r2'])
    assert.equal((await ok(['inspect', '-f', '{{.Name}}', id])).trim(), '/r2')
    await fails(['rename', 'r2', 'other'], /Error when allocating new name: Conflict\. The container name "\/other" is already in use/)
    await fails(['rename', 'r2', 'r2'], /Renaming a container with the same name as its current name/)
    await fails(['rename', 'r2', 'bad name'], /Error when allocating new name: Invalid container name/)
    await fails(['rename', 'nosuch', 'x'], /No such container: nosuch/)

    await ok(['pause', 'r2'])
    assert.equal((await ok(['inspect', '-f', '{{.State.Status}} {{.State.Paused}} {{.State.Running}}', 'r2'])).trim(), 'paused true true')
    assert.match(await ok(['ps']), /Up .* \(Paused\)\s+r2$/m)
    // Frozen for real: the runtime says so (the strata CLI, another process on the same root, reads the same record).
    assert.equal((await strata(['inspect', '-f', '{{.State.Status}}', 'r2'], { root: s.root })).text.trim(), 'paused')
    await fails(['pause', 'r2'], new RegExp(`Container ${id} is already paused`))
    await ok(['unpause', 'r2'])
    assert.equal((await ok(['inspect', '-f', '{{.State.Status}} {{.State.Paused}}', 'r2'])).trim(), 'running false')
    await fails(['unpause', 'r2'], new RegExp(`Container ${id} is not paused`))
    await fails(['pause', 'other'], /is not running/)

    await ok(['stop', '-t', '1', 'r2'])
    // The monitor logs die once it has released the container, just after stop returns: looked for until it is there.
    let events: string[] = []
    for (let i = 0; i < 50 && !events.some((e) => e.startsWith('die')); i++) {
      if (i > 0) await sleep(100)
      const until = String(Math.floor(Date.now() / 1000) + 1)
      events = (await ok(['events', '--since', since, '--until', until, '--filter', `container=${id}`, '--format', '{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.oldName}}'])).trim().split('\n')
    }
    // die carries the name the container has now, not the one it started with.
    assert.deepEqual(events.filter((e) => /^(rename|pause|unpause|die)/.test(e)), ['rename r2 /r1', 'pause r2 <no value>', 'unpause r2 <no value>', 'die r2 <no value>'])
    await ok(['rm', '-f', 'r2', 'other'])
  }
})

test('GET /containers/{id}/stats and docker stats --no-stream: dockerd 20.10\'s shapes, the cgroup\'s numbers', async (t) => {
  if (!canRun(t)) return
  const s = await startStrataServe(t)
  await importBusybox(t, s.root)
  const dockerd = await startDockerd(t, { storageDriver: 'overlay2' })
  await dockerd.docker(['import', '-c', 'CMD ["sh"]', '-', 'busybox:latest'], await busyboxRootfsTar(t))
  // A container that keeps a CPU busy: its CPU % cannot be 0.
  const args = ['run', '-d', '--name', 'busy', 'busybox', 'sh', '-c', 'while :; do :; done']
  const dockerdId = (await dockerd.docker(args)).stdout.toString().trim()
  const dockerdSock = dockerd.host.replace(/^unix:\/\//, '')
  const reference = (await httpUnix(dockerdSock, 'GET', `/v1.41/containers/${dockerdId}/stats?stream=false`)).json<Stats>()
  await dockerd.docker(['create', '--name', 'idle', 'busybox', 'true'])
  const referenceIdle = (await httpUnix(dockerdSock, 'GET', '/v1.41/containers/idle/stats?stream=false')).json<Stats>()
  await dockerd.docker(['rm', '-f', 'busy', 'idle'])
  await dockerd.stop()

  const r = await dockerOn(s, args)
  assert.equal(r.code, 0, r.stderr)
  const id = r.stdout.trim()
  const pid = Number((await strata(['inspect', '-f', '{{.State.Pid}}', id], { root: s.root })).text.trim())

  // stream=false: two readings a second apart, shaped as dockerd's.
  const one = (await httpUnix(s.socket, 'GET', `/v1.41/containers/${id}/stats?stream=false`)).json<Stats>()
  assert.deepEqual(shape(one), shape(reference))
  assert.deepEqual(Object.keys(one.memory_stats.stats!), Object.keys(reference.memory_stats.stats!))
  assert.equal(one.name, '/busy')
  assert.equal(one.id, id)
  const gap = Date.parse(one.read) - Date.parse(one.preread)
  assert.ok(gap >= 900 && gap < 5000, `read ${one.read}, preread ${one.preread}`)
  assert.ok(one.cpu_stats.cpu_usage.total_usage > one.precpu_stats.cpu_usage.total_usage, 'a busy container used CPU in between')
  assert.ok(one.cpu_stats.system_cpu_usage! > one.precpu_stats.system_cpu_usage!)
  assert.equal(one.cpu_stats.online_cpus, reference.cpu_stats.online_cpus)
  assert.equal(one.pids_stats.current, 1)
  assert.equal(one.memory_stats.limit, reference.memory_stats.limit)
  assert.ok(one.memory_stats.limit! <= totalmem())
  const usage = memoryCgroupUsage(pid)
  assert.ok(usage !== undefined && one.memory_stats.usage! > 0 && Math.abs(one.memory_stats.usage! - usage) < 4 << 20, `${one.memory_stats.usage} vs the cgroup's ${usage}`)

  // one-shot: a single reading, nothing before it.
  const shot = (await httpUnix(s.socket, 'GET', `/v1.41/containers/${id}/stats?stream=false&one-shot=true`)).json<Stats>()
  assert.equal(shot.preread, '0001-01-01T00:00:00Z')
  assert.equal(shot.precpu_stats.cpu_usage.total_usage, 0)
  assert.equal((await httpUnix(s.socket, 'GET', `/v1.41/containers/${id}/stats?stream=true&one-shot=true`)).status, 400)

  // The stream: a record a second, each with the one before.
  const records = await streamRecords(s.socket, `/v1.41/containers/${id}/stats`, 3)
  assert.equal(records[0]!.preread, '0001-01-01T00:00:00Z')
  for (let i = 1; i < 3; i++) {
    assert.equal(records[i]!.preread, records[i - 1]!.read)
    assert.deepEqual(records[i]!.precpu_stats, records[i - 1]!.cpu_stats)
  }

  // docker stats --no-stream, both CLIs: one sane row.
  for (const bin of [DOCKER_20, DOCKER_28]) {
    const out = await dockerOn(s, ['stats', '--no-stream', 'busy'], bin)
    assert.equal(out.code, 0, out.stderr)
    const [header, row, ...rest] = out.stdout.trim().split('\n')
    assert.match(header!, /^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT\s+MEM %\s+NET I\/O\s+BLOCK I\/O\s+PIDS$/)
    assert.deepEqual(rest, [])
    const m = /^([0-9a-f]{12})\s+busy\s+([0-9.]+)%\s+([0-9.]+[KMG]iB) \/ ([0-9.]+GiB)\s+([0-9.]+)%\s+0B \/ 0B\s+\S+ \/ \S+\s+1$/.exec(row!)
    assert.ok(m !== null, `${bin}: ${row}`)
    assert.equal(m[1], id.slice(0, 12))
    // A core spinning: well above nothing, at most every core.
    assert.ok(Number(m[2]) > 10 && Number(m[2]) <= 100 * one.cpu_stats.online_cpus! + 5, `${bin}: CPU ${m[2]}%`)
    assert.equal(m[4], `${(totalmem() / 2 ** 30).toFixed(2)}GiB`)
  }

  // A container that does not run: dockerd's zero record, at once.
  await dockerOn(s, ['create', '--name', 'idle', 'busybox', 'true'])
  const idle = (await httpUnix(s.socket, 'GET', '/v1.41/containers/idle/stats?stream=false')).json<Stats>()
  assert.deepEqual({ ...idle, id: '' }, { ...referenceIdle, id: '' })
  assert.equal((await httpUnix(s.socket, 'GET', '/v1.41/containers/nosuch/stats?stream=false')).status, 404)
  assert.equal((await dockerOn(s, ['rm', '-f', 'busy', 'idle'])).code, 0)
})

/**
 * `strata login` / `logout` against the distribution registry with
 * htpasswd (basic) auth: wrong credentials are refused and write nothing;
 * right ones are stored in docker's config.json as the docker CLI stores
 * them (auths.<host>.auth = base64 user:password, mode 0600, other keys
 * kept), then push and pull use them; logout removes them, and says "Not
 * logged in" the second time, as docker.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { busyboxRootfsTar } from './helpers/api-server.js'
import { requireRoot, requireTool } from './helpers/peers.js'
import { REGISTRY, startRegistry } from './helpers/registry.js'
import { STRATA_CLI } from './helpers/strata-cli.js'
import { tempDirFor } from './helpers/tmp.js'

/** bcrypt of PASSWORD (cost 4): the registry's htpasswd accepts only bcrypt (the same pair as registry-pull.test.ts). */
const USER = 'strata'
const PASSWORD = 'strata-test-pw'
const BCRYPT = '$2b$04$TnwuDl209UdNAySbOoB1Mu1z2IYh8ziU7F35eO/vucSp4vGPP42hC'

test("login stores docker's config.json auths (checked with the registry first), push and pull use it, logout removes it", { timeout: 180_000 }, async (t) => {
  if (!requireRoot(t) || !requireTool(t, REGISTRY)) return
  const dir = tempDirFor(t, 'cli-login-')
  const rdir = join(dir, 'registry')
  mkdirSync(rdir)
  writeFileSync(join(rdir, 'htpasswd'), `${USER}:${BCRYPT}\n`)
  const host = await startRegistry(t, rdir, [`auth: { htpasswd: { realm: strata-test, path: ${join(rdir, 'htpasswd')} } }`])
  const configDir = join(dir, 'docker-config')
  const configPath = join(configDir, 'config.json')
  mkdirSync(configDir)
  writeFileSync(configPath, JSON.stringify({ auths: { 'other.example:5000': { auth: 'eDp5' } }, psFormat: 'table {{.ID}}' }))
  const root = join(dir, 'root')
  const strata = (args: string[], input?: string | Buffer): { code: number; stdout: string; stderr: string } => {
    const r = spawnSync(process.execPath, [STRATA_CLI, '--root', root, '-s', 'vfs', ...args], {
      encoding: 'utf8',
      ...(input === undefined ? {} : { input }),
      env: { ...process.env, STRATA_ROOT: '', STRATA_DRIVER: '', DOCKER_CONFIG: configDir },
    })
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
  }
  const before = readFileSync(configPath, 'utf8')

  const wrong = strata(['login', host, '-u', USER, '--password-stdin'], 'nope\n')
  assert.equal(wrong.code, 1)
  assert.equal(wrong.stderr, `Error: login attempt to http://${host}/v2/ failed with status: 401 Unauthorized\n`, "dockerd's words")
  assert.equal(readFileSync(configPath, 'utf8'), before, 'a refused login writes nothing')
  assert.equal(strata(['login', host]).stderr, 'Error: Cannot perform an interactive login from a non TTY device\n', "docker's words: strata does not prompt")

  const ok = strata(['login', host, '-u', USER, '--password-stdin'], `${PASSWORD}\n`)
  assert.equal(ok.code, 0, ok.stderr)
  assert.equal(ok.stdout, 'Login Succeeded\n')
  const doc = JSON.parse(readFileSync(configPath, 'utf8')) as { auths: Record<string, { auth: string }>; psFormat: string }
  assert.equal(doc.auths[host]!.auth, Buffer.from(`${USER}:${PASSWORD}`).toString('base64'))
  assert.equal(doc.auths['other.example:5000']!.auth, 'eDp5', 'other registries kept')
  assert.equal(doc.psFormat, 'table {{.ID}}', 'other settings kept')
  assert.equal(statSync(configPath).mode & 0o777, 0o600)

  // push and pull with the stored credentials.
  assert.equal(strata(['import', '-', `${host}/test/bb:1`], await busyboxRootfsTar(t)).code, 0)
  const pushed = strata(['push', `${host}/test/bb:1`])
  assert.equal(pushed.code, 0, pushed.stderr)
  assert.equal(strata(['rmi', `${host}/test/bb:1`]).code, 0)
  const pulled = strata(['image', 'pull', `${host}/test/bb:1`])
  assert.equal(pulled.code, 0, pulled.stderr)

  assert.equal(strata(['logout', host]).stdout, `Removing login credentials for ${host}\n`)
  const after = JSON.parse(readFileSync(configPath, 'utf8')) as { auths: Record<string, unknown> }
  assert.deepEqual(Object.keys(after.auths), ['other.example:5000'])
  assert.equal(strata(['logout', `http://${host}/`]).stdout, `Not logged in to ${host}\n`)
  const denied = strata(['pull', `${host}/test/bb:1`])
  assert.equal(denied.code, 1, 'without credentials the registry refuses')
})

/**
 * Command lines strata refuses, side by side with the docker 20.10 CLI
 * refusing the same ones: the same words (docker's name swapped for
 * strata's), the same `See '... --help'.` line naming the words the verb
 * was called by, the same exit status (125 for a flag, 1 for a wrong
 * number of arguments or an unknown command). docker checks a command line
 * before it talks to a daemon, so none is needed here.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { DOCKER, requireDockerd } from './helpers/dockerd.js'
import { STRATA_CLI } from './helpers/strata-cli.js'
import { tempDirFor } from './helpers/tmp.js'

interface Outcome {
  code: number
  stderr: string
  stdout: string
}

function runCli(cmd: string, args: string[], env: NodeJS.ProcessEnv): Outcome {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env } })
  return { code: r.status ?? -1, stderr: r.stderr, stdout: r.stdout }
}

/** Command lines both CLIs refuse. */
const CASES: string[][] = [
  ['nope'],
  ['--nope'],
  ['images', '--nope'],
  ['images', '-x'],
  ['images', '-ax'],
  ['images', '--format'],
  ['images', '--all=maybe'],
  ['images', 'a', 'b'],
  ['image', 'ls', '--nope'],
  ['image', 'ls', 'a', 'b'],
  ['image', 'nope'],
  ['inspect'],
  ['history'],
  ['history', 'a', 'b'],
  ['tag', 'x'],
  ['rmi'],
  ['save'],
  ['load', 'x'],
  ['pull'],
  ['push', 'a', 'b'],
  ['ps', 'a'],
  ['ps', '--nope'],
  ['container', 'ls', '--nope'],
  ['container', 'nope'],
  ['create'],
  ['commit'],
  ['commit', 'a', 'b', 'c'],
  ['diff'],
  ['export'],
  ['rm'],
  ['system', 'df', 'x'],
  ['system', 'nope'],
  ['info', 'x'],
  ['version', '--nope'],
]

/** docker's group commands print their whole help for an unknown subcommand; strata names the word instead. */
const GROUP_MISS = /^(image|container|system) nope$/

test("refused command lines: docker 20.10's words and exit statuses", (t) => {
  if (!requireDockerd(t)) return
  const dir = tempDirFor(t, 'cli-usage-')
  const root = join(dir, 'root')
  const dockerEnv = { DOCKER_HOST: `unix://${join(dir, 'no-daemon.sock')}`, DOCKER_CONFIG: join(dir, 'docker-config') }
  for (const args of CASES) {
    const what = args.join(' ')
    const docker = runCli(DOCKER, args, dockerEnv)
    const strata = runCli(process.execPath, [STRATA_CLI, '--root', root, ...args], { STRATA_ROOT: '', STRATA_DRIVER: '' })
    assert.equal(strata.code, docker.code, `${what}: exit status (docker: ${docker.stderr})`)
    assert.equal(strata.stdout, '', `${what}: nothing on stdout`)
    if (GROUP_MISS.test(what)) {
      assert.equal(strata.stderr, `strata: 'nope' is not a strata ${args[0]} command.\nSee 'strata ${args[0]} --help'\n`, what)
      continue
    }
    const expected = docker.stderr.replaceAll('docker', 'strata')
    // What follows "Usage:" (after a wrong argument count, or docker's whole help after a flag error on its root command) is each CLI's own help.
    const cut = (s: string): string => `${s.split('\n\nUsage:')[0]!.trimEnd()}\n`
    assert.equal(cut(strata.stderr), cut(expected), what)
    if (docker.code === 1 && expected.includes('\n\nUsage:  ')) assert.match(strata.stderr, new RegExp(`\\n\\nUsage:  strata ${args.filter((a) => !a.startsWith('-')).slice(0, args[0] === 'image' || args[0] === 'container' || args[0] === 'system' ? 2 : 1).join(' ')}`), what)
  }
  assert.equal(existsSync(root), false, 'a refused command line does not create the data root')
})

test('--help on every verb and group prints its help on stdout and exits 0', (t) => {
  const dir = tempDirFor(t, 'cli-help-')
  const root = join(dir, 'root')
  const verbs = [
    ['images'], ['image', 'ls'], ['image', 'prune'], ['inspect'], ['history'], ['tag'], ['rmi'], ['save'], ['load'], ['pull'], ['push'], ['import'],
    ['ps'], ['create'], ['run'], ['start'], ['commit'], ['diff'], ['export'], ['rm'], ['mount'], ['umount'], ['container'], ['image'], ['system'], ['system', 'df'],
    ['layer'], ['layer', 'ls'], ['archive', 'apply'], ['check'], ['info'], ['version'], ['migrate'], ['serve'], ['explore'],
  ]
  for (const args of verbs) {
    for (const flag of ['--help', '-h']) {
      const r = runCli(process.execPath, [STRATA_CLI, '--root', root, ...args, flag], { STRATA_ROOT: '', STRATA_DRIVER: '' })
      assert.equal(r.code, 0, `${args.join(' ')} ${flag}: ${r.stderr}`)
      assert.match(r.stdout, /^Usage: strata /, `${args.join(' ')} ${flag}`)
    }
  }
  assert.equal(existsSync(root), false, '--help does not create the data root')
})

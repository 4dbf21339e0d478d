/**
 * `strata login [SERVER]` and `strata logout [SERVER]`: docker's, writing
 * the credentials to docker's client config (`$DOCKER_CONFIG/config.json`,
 * default ~/.docker/config.json: `auths`, base64 user:password), where
 * pull and push read them. strata never prompts: the username comes from
 * -u and the password from -p or --password-stdin.
 */
import { readFileSync } from 'node:fs'
import { login, logout } from '../transport/registry/index.js'
import { checkArgCount, parseFlags } from './args.js'
import type { CommandResult } from './output.js'
import { StrataError } from '../errors/index.js'

export const LOGIN_HELP = `Usage: strata login [OPTIONS] [SERVER]

Log in to a registry (default Docker Hub): check the credentials with it and
store them in docker's config.json ($DOCKER_CONFIG/config.json, default
~/.docker/config.json), where pull and push (and docker) find them.

Options:
  -u, --username USER   Username (required: strata does not prompt)
  -p, --password PASS   Password
      --password-stdin  Take the password from stdin
`

export const LOGOUT_HELP = `Usage: strata logout [SERVER]

Remove a registry's credentials from docker's config.json (default Docker Hub).
`

/** The registry a SERVER argument names, as docker's ConvertToHostname: scheme and path dropped; none is Docker Hub. */
function registryOf(server: string | undefined): { domain: string; shown: string } {
  if (server === undefined || server === '' || /^(https?:\/\/)?(index\.)?docker\.io(\/.*)?$/.test(server)) return { domain: 'docker.io', shown: 'https://index.docker.io/v1/' }
  const host = server.replace(/^https?:\/\//, '').replace(/\/.*$/, '')
  return { domain: host, shown: host }
}

export async function loginCommand(args: string[], stdinIsTTY: boolean): Promise<CommandResult> {
  const { values, positionals } = parseFlags(
    args,
    { username: { type: 'string', short: 'u' }, password: { type: 'string', short: 'p' }, 'password-stdin': { type: 'boolean' } },
    LOGIN_HELP,
  )
  checkArgCount(positionals, { max: 1 }, LOGIN_HELP)
  let stderr = ''
  let password = values.password
  if (values['password-stdin'] === true) {
    if (password !== undefined) throw new StrataError('INVALID_ARGUMENT', '--password and --password-stdin are mutually exclusive')
    if (values.username === undefined) throw new StrataError('INVALID_ARGUMENT', 'Must provide --username with --password-stdin')
    password = readFileSync(0, 'utf8').replace(/\r?\n$/, '')
  } else if (password !== undefined) {
    stderr += 'WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n'
  }
  if (values.username === undefined || password === undefined) {
    throw new StrataError('INVALID_ARGUMENT', stdinIsTTY ? 'strata does not prompt: give -u USER and -p PASS or --password-stdin' : 'Cannot perform an interactive login from a non TTY device')
  }
  const { domain } = registryOf(positionals[0])
  const path = await login(domain, { username: values.username, password })
  stderr += `WARNING! Your password will be stored unencrypted in ${path}.\n`
  return { stdout: 'Login Succeeded\n', stderr, exitCode: 0 }
}

export async function logoutCommand(args: string[]): Promise<CommandResult> {
  const { positionals } = parseFlags(args, {}, LOGOUT_HELP)
  checkArgCount(positionals, { max: 1 }, LOGOUT_HELP)
  const { domain, shown } = registryOf(positionals[0])
  return (await logout(domain)) ? `Removing login credentials for ${shown}\n` : `Not logged in to ${shown}\n`
}

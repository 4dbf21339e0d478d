/**
 * Templates against the docker CLI: a private dockerd 20.10 builds an image
 * with labels, environment, exposed ports, a volume, a healthcheck, an
 * entrypoint and a build step with wide characters; then the same
 * templates run through the docker CLI and through strata:
 *
 * - over the same data: docker's own JSON (`docker image inspect`,
 *   `docker images/history/system df --format '{{json .}}'`) fed to
 *   src/format's inspectWithTemplate and formatDockerList must print what
 *   `docker inspect -f T`, `docker images --format T`, ... print, byte for
 *   byte, errors included (Debian's docker 20.10 client, the API types
 *   strata's inspect follows);
 * - end to end: the image saved by docker and loaded by strata, then
 *   `strata inspect -f`, `images`, `history`, `system df`, `info` and
 *   `version` with --format against docker's (what the two stores cannot
 *   share, the tag time and parent IDs, left out of those templates);
 * - the template language of current Go: the docker 28 CLI (Go 1.24),
 *   where the machine has it, runs every data-independent case of the
 *   table (helpers/template-cases.ts), the modernGo ones included.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { ANY, DOCKER_TABWRITER, formatDockerList, IMAGE_INSPECT, inspectWithTemplate, TemplateError, Typed, type GoType, type TabwriterOptions } from '../src/format/index.js'
import { DF_HEADER, DF_ROWS, HISTORY_HEADER, HISTORY_ROW, IMAGE_HEADER, IMAGE_ROW } from '../src/cli/list-formats.js'
import { requireDockerd, startDockerd, DOCKER, type Dockerd } from './helpers/dockerd.js'
import { makeBusyboxRootfs } from './helpers/fixtures.js'
import { requireRoot, run } from './helpers/peers.js'
import { strata } from './helpers/strata-cli.js'
import { TEMPLATE_CASES } from './helpers/template-cases.js'
import { tempDirFor } from './helpers/tmp.js'

/** The docker 28 CLI some machines have besides Debian's 20.10 one (not installable from Debian: optional). */
const DOCKER_28 = '/usr/local/bin/docker'
const IMAGE = 'strata-fmt:1'

const DOCKERFILE = `FROM strata-fmt-base:1
ENV PATH=/bin:/sbin FOO="a b" EMPTY=
LABEL com.example.x=1 other="two words" html="<b>&"
EXPOSE 80/tcp 443 53/udp
VOLUME /data
WORKDIR /work
HEALTHCHECK --interval=1m30s --timeout=5s --retries=2 CMD true
STOPSIGNAL SIGTERM
RUN echo 日本語のテキスト > /x && echo 'a	tab' > /y
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo hi"]
`

interface Ran {
  code: number
  stdout: string
  stderr: string
}

/** A docker client run against the private daemon; never throws on a non-zero exit (errors are compared too). */
function client(bin: string, dockerd: Dockerd, config: string, args: string[]): Ran {
  const r = spawnSync(bin, ['-H', dockerd.host, ...args], { env: { ...process.env, DOCKER_CONFIG: config, DOCKER_CONTEXT: '' }, encoding: 'utf8' })
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
}

/** The image and its tag, built by the private dockerd. */
async function buildImage(t: TestContext, dir: string): Promise<Dockerd> {
  const dockerd = await startDockerd(t, { storageDriver: 'overlay2' })
  await makeBusyboxRootfs(join(dir, 'rootfs'))
  await run('tar', ['-C', join(dir, 'rootfs'), '-cf', join(dir, 'base.tar'), '.'])
  await dockerd.docker(['import', '-m', 'busybox <base>', join(dir, 'base.tar'), 'strata-fmt-base:1'])
  mkdirSync(join(dir, 'ctx'))
  writeFileSync(join(dir, 'ctx', 'Dockerfile'), DOCKERFILE)
  await dockerd.docker(['build', '-q', '-t', IMAGE, join(dir, 'ctx')])
  await dockerd.docker(['tag', IMAGE, 'strata-fmt:2'])
  return dockerd
}

const INSPECT_TEMPLATES = [
  '{{.Id}}',
  '{{.ID}}',
  '{{.Id}} {{.ID}}',
  '{{.RepoTags}} {{.RepoDigests}} {{.Parent}}|{{.Comment}}|{{.Os}}/{{.Architecture}} {{.Variant}}',
  '{{.Created}} {{.DockerVersion}} {{.Author}}',
  '{{.Config.Env}}',
  '{{.Config.Cmd}} {{.Config.Entrypoint}} {{.Config.Shell}} {{.Config.OnBuild}}',
  '{{.Config}}',
  '{{.ContainerConfig.Cmd}}',
  '{{json .Config}}',
  '{{json .ContainerConfig}}',
  '{{json .}}',
  '{{json .RootFS}} {{.RootFS}} {{.RootFS.Layers}} {{len .RootFS.Layers}} {{index .RootFS.Layers 0}}',
  '{{.Size}} {{.VirtualSize}} {{printf "%d|%x|%v|%T" .Size .Size .Size .Size}}',
  '{{eq .Size 0}} {{lt .Size 10}} {{gt .VirtualSize 1000}}',
  '{{eq .Size 1.0}}',
  '{{.Metadata}} {{.Metadata.LastTagTime}} {{json .Metadata}} {{.Metadata.LastTagTime.Unix}}',
  '{{.Config.Labels}}',
  '{{index .Config.Labels "com.example.x"}} {{.Config.Labels.other}} [{{.Config.Labels.nope}}]',
  '{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}',
  '{{json .Config.Labels}}',
  '{{.Config.ExposedPorts}} {{len .Config.ExposedPorts}}',
  '{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}',
  '{{index .Config.ExposedPorts "80/tcp"}}',
  '{{.Config.Healthcheck}} {{.Config.Healthcheck.Interval}} {{.Config.Healthcheck.Retries}} {{json .Config.Healthcheck}}',
  '{{.Config.Volumes}} {{.Config.WorkingDir}} {{.Config.StopSignal}} {{.Config.StopTimeout}} {{.Config.User}}|',
  '{{.GraphDriver.Name}} {{len .GraphDriver.Data}}',
  '{{.Nope}}',
  '{{.Config.Nope}}',
  '{{.Size.X}}',
  '{{.Config.Env.X}}',
  '{{upper .Os}} {{join .Config.Env ","}} {{join .Config.Cmd " "}} {{split .Id ":"}} {{title .Os}}',
  '{{upper .Size}}',
  '{{range .Config.Env}}{{.}}{{"\\n"}}{{end}}',
  '{{range $i, $e := .Config.Env}}{{if $i}},{{end}}{{$e}}{{end}}',
  '{{with .Config.Healthcheck}}{{.Test}}{{end}} {{with .Config.StopTimeout}}{{.}}{{else}}none{{end}}',
  '{{if .Config.Labels}}labelled{{end}} {{if not .RepoDigests}}no digests{{end}}',
  '{{printf "%s" .Config}}',
  '{{printf "%+v" .RootFS}}',
  '{{printf "%v" .Config.ExposedPorts}} {{printf "%q" .Config.Env}}',
  '{{.Config.Image}}',
  '{{.Id',
  '{{.Id}} {{end}}',
  '{{nope .Id}}',
]

// ('json' alone is docker 23+'s spelling of {{json .}}: docker 20.10 prints the word "json".)
const IMAGES_TEMPLATES = [
  'table',
  '',
  '{{json .}}',
  'table {{.ID}}\\t{{.Repository}}\\t{{.Tag}}\\t{{.Size}}\\t{{.CreatedAt}}',
  'table {{.Repository}}:{{.Tag}}\t{{.ID}}\t{{.Digest}}\t{{.VirtualSize}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}',
  '{{.Repository}}:{{.Tag}} {{.Size}}',
  '  {{.ID}}  ',
  '{{.ID}}\\t{{.Tag}}\\n',
  'table {{upper .Repository}}\t{{lower .Tag}}\t{{json .Size}}\t{{pad .Tag 1 1}}|',
  'table {{.ID}}\t{{json .}}',
  'table {{.ID}}\t{{.Nope}}',
  'raw',
  '{{.Nope}}',
  '{{.ID',
  'table {{.Label "x"}}',
]

const HISTORY_TEMPLATES = [
  'table',
  '{{json .}}',
  'table {{.ID}}\t{{.CreatedBy}}\t{{.Size}}',
  'table {{.CreatedBy}}\t{{.Comment}}\t{{.CreatedAt}}',
  '{{.ID}}: {{.CreatedBy}} ({{.Size}})',
  'table {{truncate .CreatedBy 20}}\t{{.Size}}',
  '{{.Nope}}',
]

const DF_TEMPLATES = ['table', '{{json .}}', 'table {{.Type}}\t{{.Size}}\t{{.Reclaimable}}', '{{.Type}}: {{.TotalCount}} ({{.Active}} active)', '{{.Nope}}', 'table {{.Type}}\t{{json .}}']

/** docker 20.10's tabwriter: Go's, which counts code points (docker 23+ counts display columns). */
const DOCKER_20_TABWRITER: TabwriterOptions = { ...DOCKER_TABWRITER, width: (s) => [...s].length }

/** What a list verb of strata's engine prints for a format over rows, shaped like a docker 20.10 CLI run (or a later one's with `tabwriter`). */
function ourList(format: string, rows: unknown[], type: GoType, header: Record<string, string>, tabwriter = DOCKER_20_TABWRITER): Ran {
  try {
    return { code: 0, stdout: formatDockerList(format, rows, { type, header, tabwriter }), stderr: '' }
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err
    return { code: 1, stdout: '', stderr: `${err.message}\n` }
  }
}

/** Go prints a nested pointer as its address, which differs on every run (strata prints a stand-in). */
function noAddresses(r: Ran): Ran {
  return { ...r, stdout: r.stdout.replace(/0xc[0-9a-f]{9}/g, '0xADDRESS') }
}

function jsonLines(text: string): unknown[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as unknown)
}

test('docker inspect -f, images, history and system df --format print what strata prints over the same data', { timeout: 600_000 }, async (t) => {
  if (!requireRoot(t) || !requireDockerd(t)) return
  const dir = tempDirFor(t, 'format-docker-')
  const config = join(dir, 'client')
  mkdirSync(config)
  const dockerd = await buildImage(t, dir)
  const docker = (args: string[]): Ran => client(DOCKER, dockerd, config, args)

  await t.test('inspect -f: typed first, then the raw JSON, errors and exit codes alike', () => {
    const raw = (JSON.parse(docker(['image', 'inspect', IMAGE]).stdout) as unknown[])[0]
    for (const tmpl of INSPECT_TEMPLATES) {
      const theirs = docker(['inspect', '-f', tmpl, IMAGE])
      let ours: Ran
      try {
        const r = inspectWithTemplate(tmpl, [{ raw, type: IMAGE_INSPECT }])
        const errors = r.errors.filter((e) => e !== undefined)
        ours = { code: errors.length > 0 ? 1 : 0, stdout: r.stdout, stderr: errors.map((e) => `${e}\n`).join('') }
      } catch (err) {
        if (!(err instanceof TemplateError)) throw err
        ours = { code: 64, stdout: '', stderr: `${err.message}\n` }
      }
      assert.deepEqual(noAddresses(ours), noAddresses(theirs), `inspect -f ${JSON.stringify(tmpl)}`)
    }
  })

  await t.test('images --format over the rows docker lists', () => {
    for (const tmpl of IMAGES_TEMPLATES) {
      // Ages move: take the rows right before the run and retry once if a minute passed.
      for (let attempt = 0; ; attempt++) {
        const rows = jsonLines(docker(['images', '--format', '{{json .}}', 'strata-fmt']).stdout)
        const theirs = docker(['images', '--format', tmpl, 'strata-fmt'])
        const again = jsonLines(docker(['images', '--format', '{{json .}}', 'strata-fmt']).stdout)
        if (JSON.stringify(rows) !== JSON.stringify(again) && attempt === 0) continue
        const format = tmpl === '' ? 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}' : tmpl
        const source = format === 'table' ? 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}' : format
        const raw = source === 'raw' ? 'repository: {{ .Repository }}\ntag: {{.Tag}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n' : source
        assert.deepEqual(ourList(raw, rows, IMAGE_ROW, IMAGE_HEADER), theirs, `images --format ${JSON.stringify(tmpl)}`)
        break
      }
    }
  })

  await t.test('history --format over the rows docker lists', () => {
    for (const noTrunc of [[], ['--no-trunc']]) {
      for (const tmpl of HISTORY_TEMPLATES) {
        for (let attempt = 0; ; attempt++) {
          const rows = jsonLines(docker(['history', ...noTrunc, '--format', '{{json .}}', IMAGE]).stdout)
          const theirs = docker(['history', ...noTrunc, '--format', tmpl, IMAGE])
          const again = jsonLines(docker(['history', ...noTrunc, '--format', '{{json .}}', IMAGE]).stdout)
          if (JSON.stringify(rows) !== JSON.stringify(again) && attempt === 0) continue
          const format = tmpl === 'table' ? 'table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}' : tmpl
          assert.deepEqual(ourList(format, rows, HISTORY_ROW, HISTORY_HEADER), theirs, `history ${noTrunc.join(' ')} --format ${JSON.stringify(tmpl)}`)
          break
        }
      }
    }
  })

  await t.test('system df --format over the rows docker reports', () => {
    const rows = jsonLines(docker(['system', 'df', '--format', '{{json .}}']).stdout)
    const types = [DF_ROWS.images, DF_ROWS.containers, DF_ROWS.volumes, DF_ROWS.buildCache]
    const typed = rows.map((r, i) => new Typed(types[i]!, r))
    for (const tmpl of DF_TEMPLATES) {
      const format = tmpl === 'table' ? 'table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}' : tmpl
      assert.deepEqual(ourList(format, typed, ANY, DF_HEADER), docker(['system', 'df', '--format', tmpl]), `system df --format ${JSON.stringify(tmpl)}`)
    }
  })

  await t.test('the strata CLI on the image docker saved: inspect -f, images, history, system df, info and version', async () => {
    const archive = join(dir, 'image.tar')
    await dockerd.docker(['save', '-o', archive, IMAGE, 'strata-fmt:2'])
    const root = join(dir, 'strata')
    const loaded = await strata(['load', '-i', archive], { root, driver: 'overlay2' })
    assert.equal(loaded.code, 0, loaded.stderr)
    const ours = async (args: string[]): Promise<Ran> => {
      const r = await strata(args, { root, driver: 'overlay2' })
      return { code: r.code, stdout: r.text, stderr: r.stderr }
    }
    // Everything but what the two stores cannot share: the tag time, the graph driver's paths, the parent
    // (load keeps Parent only when the parent is in the archive too; test/cli-parent.test.ts covers it).
    for (const tmpl of INSPECT_TEMPLATES.filter((x) => !/Metadata|GraphDriver|Parent|json \.}}/.test(x))) {
      assert.deepEqual(noAddresses(await ours(['inspect', '-f', tmpl, IMAGE])), noAddresses(docker(['inspect', '-f', tmpl, IMAGE])), `strata inspect -f ${JSON.stringify(tmpl)}`)
    }
    const missing = await ours(['inspect', '-f', '{{.Os}}', IMAGE, 'nosuch:1'])
    assert.equal(missing.code, 1)
    assert.equal(missing.stdout, 'linux\n')
    // docker inspect looks for any kind of object; image inspect for an image.
    assert.equal(missing.stderr, docker(['inspect', '-f', '{{.Os}}', IMAGE, 'nosuch:1']).stderr)
    assert.equal(missing.stderr, 'Error: No such object: nosuch:1\n')
    assert.equal((await ours(['image', 'inspect', 'nosuch:1'])).stderr, 'Error: No such image: nosuch:1\n')
    const noAges = (r: Ran): Ran => ({ ...r, stdout: r.stdout.replace(/(Less than a second|About an? \w+|\d+ \w+) ago/g, 'AGO') })
    for (const tmpl of IMAGES_TEMPLATES.filter((x) => !x.includes('Containers') && !x.includes('SharedSize') && x !== 'json' && !x.includes('json .'))) {
      assert.deepEqual(noAges(await ours(['images', '--format', tmpl, 'strata-fmt'])), noAges(docker(['images', '--format', tmpl, 'strata-fmt'])), `strata images --format ${JSON.stringify(tmpl)}`)
    }
    // history: the parents' IDs are docker's own (an intermediate image docker keeps is not in the archive), so no .ID here; and
    // the wide characters of a step make docker 20.10's columns (code points) wider than strata's (display
    // width, as docker 23+): compared with the padding collapsed (the layout itself is checked above).
    const collapsed = (r: Ran): Ran => ({ ...noAges(r), stdout: noAges(r).stdout.replace(/ {2,}/g, '  ') })
    for (const tmpl of ['table {{.CreatedBy}}\t{{.Size}}\t{{.Comment}}', '{{.CreatedAt}} {{.CreatedBy}}', 'table {{.CreatedSince}}\t{{truncate .CreatedBy 20}}']) {
      assert.deepEqual(collapsed(await ours(['history', '--format', tmpl, IMAGE])), collapsed(docker(['history', '--format', tmpl, IMAGE])), `strata history --format ${JSON.stringify(tmpl)}`)
    }
    const infoErr = await ours(['info', '--format', '{{.Nope}}'])
    const dockerInfoErr = docker(['info', '--format', '{{.Nope}}'])
    assert.deepEqual([infoErr.code, infoErr.stdout, infoErr.stderr], [dockerInfoErr.code, dockerInfoErr.stdout, dockerInfoErr.stderr])
    assert.deepEqual(await ours(['info', '--format', '{{.Driver}} {{.OSType}} {{.Images}}']), { code: 0, stdout: 'overlay2 linux 1\n', stderr: '' })
    for (const tmpl of ['{{.Nope}}', '{{.Client.Version', '{{.Client.Nope}}']) {
      const v = await ours(['version', '--format', tmpl])
      const d = docker(['version', '--format', tmpl])
      assert.deepEqual([v.code, v.stdout, v.stderr], [d.code, d.stdout, d.stderr], `strata version --format ${JSON.stringify(tmpl)}`)
    }
    const df = await ours(['system', 'df', '--format', '{{.Nope}}'])
    assert.deepEqual([df.code, df.stderr], [1, 'template parsing error: template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope in type *formatter.diskUsageImagesContext\n'])
  })

  await t.test('current Go (the docker 28 CLI): the data-independent cases of the table, and tables with wide characters', (st) => {
    if (!existsSync(DOCKER_28)) {
      st.skip(`no docker 28 CLI at ${DOCKER_28} (not installable from Debian; the Go 1.19 peer covers the rest)`)
      return
    }
    // docker 23+ lays tables out by display width: the wide characters of the RUN step take two columns.
    for (const tmpl of ['table', 'table {{.CreatedBy}}\t{{.Size}}']) {
      const rows = jsonLines(client(DOCKER_28, dockerd, config, ['history', '--no-trunc', '--format', '{{json .}}', IMAGE]).stdout)
      const format = tmpl === 'table' ? 'table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}' : tmpl
      const theirs = client(DOCKER_28, dockerd, config, ['history', '--no-trunc', '--format', tmpl, IMAGE])
      assert.deepEqual(ourList(format, rows, HISTORY_ROW, HISTORY_HEADER, DOCKER_TABWRITER), theirs, `docker 28 history --format ${JSON.stringify(tmpl)}`)
    }
    // A case is data-independent when it reads no field, variable or dot: its result is the same over any image.
    const literal = TEMPLATE_CASES.filter((c) => c.data === null && !/\$|\.(?![0-9*])/.test(c.template.replace(/"(?:[^"\\]|\\.)*"|`[^`]*`/g, '""')))
    assert.ok(literal.length > 60, `${literal.length} data-independent cases`)
    for (const c of literal) {
      const r = client(DOCKER_28, dockerd, config, ['inspect', '-f', c.template, IMAGE])
      if (c.err === undefined) {
        assert.equal(r.stdout, `${c.out}\n`, `docker 28 inspect -f ${JSON.stringify(c.template)}`)
        assert.equal(r.code, 0)
      } else {
        assert.equal(r.stderr, `template parsing error: ${c.err}\n`, `docker 28 inspect -f ${JSON.stringify(c.template)}`)
      }
    }
  })
})

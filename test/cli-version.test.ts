/**
 * `strata version` without --format writes docker's default version
 * template's output directly (src/cli/version.ts, defaultVersionReport):
 * here it is held equal to what the template engine writes for the same
 * report, with a server part, without one, and with details in an order
 * that is not the key order (Go ranges over a map sorted by key).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DEFAULT_VERSION_TEMPLATE, defaultVersionReport, versionTemplate, type VersionReport } from '../src/cli/version.js'

const client: VersionReport['Client'] = { Platform: { Name: 'strata' }, Version: '0.1.0', ApiVersion: '1.41', NodeVersion: 'v20.20.2', Os: 'linux', Arch: 'amd64' }

function viaTemplate(report: VersionReport): string {
  const out = versionTemplate(DEFAULT_VERSION_TEMPLATE, report)
  assert.equal(out.exitCode, 0, out.stderr)
  return out.stdout
}

test('the default version report written directly equals the default template run by the engine', () => {
  const reports: VersionReport[] = [
    { Client: client, Server: null },
    {
      Client: client,
      Server: {
        Platform: { Name: 'strata (no daemon)' },
        Components: [{ Name: 'Storage', Version: '0.1.0', Details: { StorageDriver: 'overlay2', DataRoot: '/var/lib/a-rather-long-data-root/strata', Format: 'dockerd 20.10' } }],
        Version: '0.1.0',
        ApiVersion: '1.41',
        Os: 'linux',
        Arch: 'amd64',
        KernelVersion: '6.1.0',
      },
    },
    {
      Client: { ...client, Platform: { Name: '' } },
      Server: {
        Platform: { Name: '' },
        Components: [
          { Name: 'Storage', Version: '0.1.0' },
          { Name: 'Other', Version: '2', Details: { b: '2', a: '1' } },
        ],
        Version: '0.1.0',
        ApiVersion: '1.41',
        Os: 'linux',
        Arch: 'amd64',
        KernelVersion: '6.1.0',
      },
    },
  ]
  for (const report of reports) {
    const expected = viaTemplate(report)
    assert.ok(expected.includes('Client:'), expected)
    assert.equal(defaultVersionReport(report), expected)
  }
})

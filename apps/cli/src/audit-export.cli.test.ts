import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { customerContainer, exportedCluster, type CustomerContainer } from '../../../test/support/audit-container';
import { READ, WRITE, startStack, testConfig, waitFor, type TestStack } from '../../../test/support/stack';
import { run } from './cli';
import { ExitCode } from './exit-codes';

const TENANT = 'c1c1c1c1-0000-4000-8000-0000000000a7';

function sink() {
  const chunks: string[] = [];
  return { isTTY: false, columns: 120, write: (c: string) => chunks.push(c), text: () => chunks.join('') };
}

// hcs audit-export in-process against the real API, an in-process worker and Azurite.
describe('hcs audit-export', { timeout: 120_000 }, () => {
  let s: TestStack;
  let customer: CustomerContainer;
  let clusterId: string;
  let work: string;

  const hcs = async (argv: string[], o: { roles?: string[]; stdin?: string } = {}) => {
    const stdout = sink();
    const stderr = sink();
    const env = { HOME: work, HCS_CONFIG: path.join(work, 'config.json'), HCS_API: s.url, HCS_TOKEN: s.token(TENANT, o.roles ?? WRITE) };
    const code = await run(argv, { stdout, stderr, env, stdin: o.stdin === undefined ? undefined : Readable.from([o.stdin]) });
    return { code, stdout: stdout.text(), stderr: stderr.text() };
  };

  before(async () => {
    s = await startStack({ worker: true, config: await testConfig({ AUDIT_EXPORT_TICK_MS: '200' }) });
    customer = await customerContainer(s.config);
    clusterId = await exportedCluster(s.db, TENANT, 'cli-audited');
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'hcs-audit-'));
  });
  after(async () => {
    await customer?.container.deleteIfExists();
    await s?.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('shows the export off, refuses a SAS without add and create, then exports with a SAS read from stdin, shows the status, and turns off', async () => {
    const off = await hcs(['audit-export', clusterId]);
    assert.equal(off.code, ExitCode.Ok, off.stderr);
    assert.match(off.stdout, /^Export: +off$/m);

    const weak = await hcs(['audit-export', clusterId, '--container-url', customer.sasUrl({ permissions: 'r' })]);
    assert.equal(weak.code, ExitCode.Rejected);
    assert.match(weak.stderr, /sas_permissions: the SAS \(sp=r\) lacks add \(a\)/);

    const alone = await hcs(['audit-export', clusterId, '--managed-identity']);
    assert.equal(alone.code, ExitCode.Usage);
    assert.match(alone.stderr, /--managed-identity goes with --container-url/);
    const reader = await hcs(['audit-export', clusterId, '--container-url', customer.sasUrl()], { roles: READ });
    assert.equal(reader.code, ExitCode.Rejected);

    const sasUrl = customer.sasUrl();
    const on = await hcs(['audit-export', clusterId, '--container-url', '-'], { stdin: `${sasUrl}\n` });
    assert.equal(on.code, ExitCode.Ok, on.stderr);
    assert.match(on.stdout, new RegExp(`^Container: +${customer.endpoint}/${customer.container.containerName}$`, 'm'));
    assert.ok(!on.stdout.includes(new URL(sasUrl).searchParams.get('sig')!), 'the SAS is never printed');

    const json = await waitFor('the export to catch up', () => hcs(['audit-export', clusterId, '--json']), (r) => JSON.parse(r.stdout).status.state === 'up-to-date', 60_000, 200);
    assert.equal(JSON.parse(json.stdout).status.lag.events, 0);
    const shown = await hcs(['audit-export', clusterId]);
    assert.match(shown.stdout, /^Export: +on \(up-to-date\)$/m);
    assert.match(shown.stdout, new RegExp(`^Last exported: +event \\d+ of .* into ${clusterId}/y=\\d{4}/m=\\d\\d/d=\\d\\d/h=\\d\\d\\.jsonl`, 'm'));
    assert.match(shown.stdout, /^Lag: +none$/m);

    const stopped = await hcs(['audit-export', clusterId, '--off']);
    assert.equal(stopped.code, ExitCode.Ok, stopped.stderr);
    assert.match(stopped.stdout, /^Export: +off$/m);
    assert.equal((await s.db.auditExport.findUniqueOrThrow({ where: { clusterId } })).enabled, false);
  });
});

/**
 * The fake marketplace metering API (test/support/fake-metering.ts) in a
 * process of its own, so that a benchmark's CPU time is its own code's. Writes
 * { url, tenantId, clientId, clientSecret } to $INFO_FILE once listening.
 */
import fs from 'node:fs';
import { startFakeMetering } from '../test/support/fake-metering';

async function main(): Promise<void> {
  const now = Number(process.env.FAKE_NOW ?? Date.now());
  const fake = await startFakeMetering({ now: () => now });
  const info = { url: fake.url, tenantId: fake.tenantId, clientId: fake.clientId, clientSecret: fake.clientSecret };
  fs.writeFileSync(process.env.INFO_FILE!, JSON.stringify(info), { mode: 0o600 });
  const stop = () => void fake.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

void main();

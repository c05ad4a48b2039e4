/**
 * What the Azure target's end-to-end tests share: the worker as a process of
 * its own with the local cloud's DNS, the end of a run (worker, stack, local
 * ARM, work folder), and an operation waited for to its end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { LocalArm } from './local-arm';
import { waitFor, type TestStack } from './stack';
import { WORKER_MAIN, exited, workerEnv } from './worker-process';

/** The worker as a real process (a test can SIGKILL it), resolving the local cloud's vault names as it would Azure's. */
export function spawnAzureWorker(s: TestStack, name: string): ChildProcess {
  const env = { ...workerEnv(s.config, name), NODE_OPTIONS: `--require ${path.join(__dirname, 'local-dns.js')}` };
  return spawn(process.execPath, [WORKER_MAIN], { env, stdio: ['ignore', 'ignore', 'inherit'] });
}

export async function endAzureRun(children: ChildProcess[], s: TestStack | undefined, arm: LocalArm | undefined, work: string | undefined): Promise<void> {
  for (const c of children) {
    c.kill('SIGKILL');
    await exited(c);
  }
  await s?.close();
  await arm?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
}

/** The operation once it ended (Succeeded or Failed), as the API shows it. */
export async function operationEnd(s: TestStack, token: string, opId: string, timeoutMs: number) {
  return (await waitFor(`operation ${opId}`, () => s.request('GET', `/v1/operations/${opId}`, { token }), (r) => ['Succeeded', 'Failed'].includes(r.body.state), timeoutMs)).body;
}

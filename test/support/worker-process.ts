/**
 * The real worker as a process of its own (`dist/apps/worker/src/main.js`), for
 * tests and benches that kill it, freeze it or read its CPU time.
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Config } from '../../libs/core/src';

export const WORKER_MAIN = path.resolve(__dirname, '..', '..', 'apps', 'worker', 'src', 'main.js');

/** This process's environment with `config`'s plain settings over it, and the worker's name. */
export function workerEnv(config: Config, name: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(config)) if (v !== undefined && typeof v !== 'object') env[k] = String(v);
  env.WORKER_NAME = name;
  return env;
}

/** Resolves once the child has exited (at once if it has). */
export function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
  });
}

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`; resolves once it has exited. */
export async function stopGracefully(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited(child);
  clearTimeout(timer);
}

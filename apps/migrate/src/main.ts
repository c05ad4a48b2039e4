/**
 * The image's migration role (infra/k8s/Dockerfile, docs/deployment.md):
 *   deploy  applies the Prisma migrations the image carries: the release's Job, before its pods serve;
 *   wait    holds a pod of the API or the worker (its init container) until every migration the image
 *           carries is applied, so a release never runs on a schema older than its own.
 * Both read DATABASE_URL through the configuration schema like the API and the worker.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ConfigError, loadConfig, type Config } from '../../../libs/core/src';
import { migrationState } from './pending-migrations';

const USAGE = 'usage: node dist/apps/migrate/src/main.js deploy | wait [--timeout-seconds N]';
const POLL_MS = 2000;

function log(msg: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ level: 'info', context: 'migrate', msg, ...fields })}\n`);
}

/**
 * Prisma's own `migrate deploy` (its CLI is a production dependency for this role: docs/deployment.md),
 * with prisma-config.js beside this file: the JS engine on our pg adapter, no native engine download,
 * no update check.
 */
function deploy(config: Config): Promise<number> {
  const cli = path.join(config.repoRoot, 'node_modules', 'prisma', 'build', 'index.js');
  const prismaConfig = path.join(__dirname, 'prisma-config.js');
  const child = spawn(process.execPath, [cli, 'migrate', 'deploy', '--config', prismaConfig], {
    cwd: config.repoRoot,
    env: { ...process.env, DATABASE_URL: config.DATABASE_URL, CHECKPOINT_DISABLE: '1', PRISMA_HIDE_UPDATE_MESSAGE: '1' },
    stdio: 'inherit',
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

async function wait(config: Config, timeoutSeconds: number): Promise<number> {
  const dir = path.join(config.repoRoot, 'prisma', 'migrations');
  const deadline = Date.now() + timeoutSeconds * 1000;
  let last = '';
  for (;;) {
    const state = await migrationState(config.DATABASE_URL, dir).catch((e: unknown) => ({ error: (e as Error).message.split('\n')[0] }));
    if ('pending' in state && state.pending.length === 0) {
      log('every migration of this release is applied');
      return 0;
    }
    const said = JSON.stringify(state);
    if (said !== last) {
      log('waiting for the release\'s migration Job', 'pending' in state
        ? { pending: state.pending, failed: state.failed, hint: state.failed.length ? 'a failed migration blocks migrate deploy: see docs/deployment.md#a-failed-migration' : undefined }
        : { databaseError: state.error });
      last = said;
    }
    if (Date.now() >= deadline) {
      process.stderr.write(`migrations not applied after ${timeoutSeconds} s: ${said}\n`);
      return 1;
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function main(argv: string[]): Promise<number> {
  const [role, ...rest] = argv;
  const config = loadConfig();
  if (role === 'deploy' && rest.length === 0) return deploy(config);
  if (role === 'wait') {
    const i = rest.indexOf('--timeout-seconds');
    const timeout = i >= 0 ? Number(rest[i + 1]) : 600;
    if (!Number.isInteger(timeout) || timeout < 1 || (rest.length !== 0 && rest.length !== 2)) throw new ConfigError(USAGE);
    return wait(config, timeout);
  }
  throw new ConfigError(USAGE);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`migrate failed: ${e instanceof ConfigError ? e.message : (e as Error).stack}\n`);
    process.exit(e instanceof ConfigError ? 2 : 1);
  },
);

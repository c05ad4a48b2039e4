/**
 * `npm start`'s supervisor (infra/local/start.sh sets up, exports the environment, then runs
 * this): the identity issuer, the worker and the API, kept up by a Supervisor until Ctrl-C or
 * `npm run stop` (which stops this process first, through run/supervisor.pid). Clusters keep
 * running when it ends.
 */
import fs from 'node:fs';
import path from 'node:path';
import { procAlive, runScript, say, StackError, waitUntil } from './processes';
import { Supervisor } from './supervisor';
import { SERVICE_ENV, SERVICE_NODE_FLAGS } from './node-flags';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const LOCAL = process.env.LOCAL_DIR || path.join(ROOT, '.local');
const RUN = path.join(LOCAL, 'run');
const LOGS = path.join(LOCAL, 'logs');
const SUPERVISOR_PID = path.join(RUN, 'supervisor.pid');

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new StackError(`${name} is not set: run npm start (infra/local/start.sh)`);
  return v;
}

const runningPid = (file: string): number | undefined => {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    return pid > 0 && procAlive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
};

/** URL answers 2xx within timeoutMs (HTTPS trusts NODE_EXTRA_CA_CERTS, the development CA). */
const answers = (url: string, timeoutMs: number) =>
  waitUntil(() => fetch(url, { signal: AbortSignal.timeout(2_000) }).then((r) => r.ok, () => false), timeoutMs);

const PROCESSES = {
  issuer: path.join(ROOT, 'dist/infra/local/issuer.js'),
  worker: path.join(ROOT, 'dist/apps/worker/src/main.js'),
  api: path.join(ROOT, 'dist/apps/api/src/main.js'),
} as const;

function banner(): string {
  const port = env('PORT');
  const operatorTenant = env('OPERATOR_TENANT_ID');
  return `
  Managed Consul is running.

  Console    ${env('CONSOLE_ORIGIN')}/      (sign in: pick a test user, a tenant and roles)
  Consul UI  http://<cluster-id>.ui.localhost:${env('UI_PROXY_PORT')}/ui/   (signed in from the console: Open Consul UI)
  API        http://127.0.0.1:${port}      (OpenAPI docs: http://127.0.0.1:${port}/docs)
  Worker     http://127.0.0.1:${env('WORKER_PORT')}/healthz
  Logs       ${LOGS}/{api,worker,issuer}.log

  Get a token:
    TOKEN=$(npm run --silent token -- --tenant 11111111-1111-1111-1111-111111111111 --user alice --roles Clusters.ReadWrite)

  Create a cluster:
    curl -s -X POST http://127.0.0.1:${port}/v1/clusters \\
      -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
      -d '{"name":"demo","subscriptionId":"00000000-0000-0000-0000-000000000001","resourceGroup":"rg-demo","region":"westeurope","tier":"standard"}'

  Then: GET /v1/operations/{id}, GET /v1/clusters/{id}/client-config, POST /v1/clusters/{id}/tokens.

  Operator (SRE) token: Platform.SRE counts only from the operator's tenant, ${operatorTenant}:
    SRE=$(npm run --silent token -- --tenant ${operatorTenant} --user sre --roles Platform.SRE)
  A process that exits is started again (see the log). Ctrl-C stops the API and
  the worker; 'npm run stop' stops everything.

`;
}

async function main(): Promise<void> {
  fs.mkdirSync(RUN, { recursive: true });
  fs.mkdirSync(LOGS, { recursive: true });
  const already = runningPid(SUPERVISOR_PID);
  if (already) throw new StackError(`npm start is already running (pid ${already}); run 'npm run stop' first`);
  for (const name of Object.keys(PROCESSES)) {
    const pid = runningPid(path.join(RUN, `${name}.pid`));
    if (pid) throw new StackError(`${name} is already running (pid ${pid}); run 'npm run stop' first`);
  }

  // Every variable it needs is read before anything starts.
  const ready = banner();
  const urls = { issuer: env('AUTH_METADATA_URL'), api: `http://127.0.0.1:${env('PORT')}/readyz`, worker: `http://127.0.0.1:${env('WORKER_PORT')}/healthz` };
  const supervisor = new Supervisor();
  fs.writeFileSync(SUPERVISOR_PID, `${process.pid}\n`);
  let ending = false;
  const end = async (code: number) => {
    if (ending) return;
    ending = true;
    say.log('stopping the API, the worker and the identity issuer (clusters keep running; npm run stop stops everything)');
    await supervisor.stop();
    if (runningPid(SUPERVISOR_PID) === process.pid) fs.rmSync(SUPERVISOR_PID, { force: true });
    process.exit(code);
  };
  process.on('SIGINT', () => void end(130));
  process.on('SIGTERM', () => void end(143));

  const launch = (name: keyof typeof PROCESSES) =>
    supervisor.start({ name, command: process.execPath, args: [...(name === 'issuer' ? [] : SERVICE_NODE_FLAGS), PROCESSES[name]], env: name === 'issuer' ? process.env : { ...process.env, ...SERVICE_ENV }, logFile: path.join(LOGS, `${name}.log`), cwd: ROOT });
  try {
    launch('issuer');
    if (!(await answers(urls.issuer, 20_000))) throw new StackError(`the identity issuer did not start; see ${LOGS}/issuer.log`);
    launch('worker');
    launch('api');
    if (!(await answers(urls.api, 30_000))) throw new StackError(`the API did not become ready; see ${LOGS}/api.log`);
    if (!(await answers(urls.worker, 30_000))) throw new StackError(`the worker did not become ready; see ${LOGS}/worker.log`);
  } catch (e) {
    say.warn(`ERROR: ${e instanceof Error ? e.message : String(e)}`);
    await end(1);
  }
  process.stdout.write(ready);
  // From here the supervisor keeps them up until a signal.
}

runScript(main);

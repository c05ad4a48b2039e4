import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { freePort, privateHome, sourced } from './support/local-clone';
import { waitFor } from './support/stack';

const REPO = path.resolve(__dirname, '..', '..');
const LIB = path.join(REPO, 'infra', 'local', 'lib.sh');

/** Runs one function of the real infra/local/lib.sh, as setup.sh does, for a clone whose runtime folder is `local`. */
function lib(fn: string, env: Record<string, string>): { code: number | null; stderr: string } {
  return sourced(LIB, fn, env);
}

const pingRedis = (port: number) => spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout.trim() === 'PONG';

function bareRedis(port: number, dir: string): ChildProcess {
  return spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
}

const exited = (c: ChildProcess) => new Promise<void>((resolve) => (c.exitCode !== null || c.signalCode !== null ? resolve() : c.once('exit', () => resolve())));

// The local stack from any folder a user would clone into, and never on another clone's services.
describe('the local stack scripts', () => {
  const cleanups: (() => void | Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('brings PostgreSQL up for a clone inside a mode-0700 home', async () => {
    const home = privateHome();
    const local = path.join(home, 'clone', '.local');
    fs.mkdirSync(local, { recursive: true });
    const port = await freePort();
    const env = { LOCAL_DIR: local, PG_PORT: String(port) };
    // Named by the clone's identity, which its first setup makes.
    const pgRoot = () => sourced(LIB, 'echo "$PG_ROOT"', env).stdout.trim();
    cleanups.push(() => {
      const root = pgRoot();
      lib('pg_running && pg_ctl_as_postgres stop -m fast -w -t 60 >/dev/null || true', env);
      if (root.startsWith('/var/lib/postgresql/managed-consul/')) fs.rmSync(root, { recursive: true, force: true });
      fs.rmSync(home, { recursive: true, force: true });
    });
    const r = lib('ensure_postgres', env);
    assert.equal(r.code, 0, r.stderr);
    const root = pgRoot();
    assert.ok(root.startsWith('/var/lib/postgresql/managed-consul/') && !root.startsWith(home), `PostgreSQL's files are outside the private home (${root})`);
    assert.equal(spawnSync('/usr/lib/postgresql/15/bin/pg_isready', ['-q', '-h', '127.0.0.1', '-p', String(port)]).status, 0);
    assert.equal(fs.readFileSync(path.join(root, 'owner'), 'utf8').trim(), local, 'the cluster names the clone it belongs to');
  });

  it("refuses a Redis on its port that is not this clone's, naming the process", async () => {
    const local = fs.mkdtempSync(path.join(os.tmpdir(), 'clone-'));
    const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'other-'));
    const port = await freePort();
    const other = bareRedis(port, elsewhere);
    cleanups.push(async () => {
      other.kill('SIGKILL');
      await exited(other);
      fs.rmSync(local, { recursive: true, force: true });
      fs.rmSync(elsewhere, { recursive: true, force: true });
    });
    await waitFor('the other Redis answers', async () => pingRedis(port), (up) => up, 20_000);
    const r = lib('ensure_redis', { LOCAL_DIR: local, REDIS_PORT: String(port) });
    assert.notEqual(r.code, 0, 'setup must not use a Redis that is not its own');
    assert.match(r.stderr, new RegExp(`port ${port} is held by pid ${other.pid} \\(redis-server [^)]*\\), which is not this clone's Redis`));
    assert.match(r.stderr, /set REDIS_PORT/);
    assert.equal(other.exitCode, null, 'the other clone\'s Redis is left alone');
  });

  it('replaces a Redis left behind by a clone whose folder is gone', async () => {
    const local = fs.mkdtempSync(path.join(os.tmpdir(), 'clone-'));
    const gone = fs.mkdtempSync(path.join(os.tmpdir(), 'gone-'));
    const port = await freePort();
    const leftover = bareRedis(port, gone);
    cleanups.push(async () => {
      spawnSync('redis-cli', ['-p', String(port), 'shutdown', 'nosave']);
      leftover.kill('SIGKILL');
      await exited(leftover);
      fs.rmSync(local, { recursive: true, force: true });
    });
    await waitFor('the leftover Redis answers', async () => pingRedis(port), (up) => up, 20_000);
    fs.rmSync(gone, { recursive: true, force: true });
    const r = lib('ensure_redis', { LOCAL_DIR: local, REDIS_PORT: String(port) });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /belongs to a clone whose folder is gone/);
    await exited(leftover);
    const pid = Number(fs.readFileSync(path.join(local, 'run', 'redis.pid'), 'utf8'));
    assert.notEqual(pid, leftover.pid);
    assert.ok(pingRedis(port), "this clone's own Redis answers");
    assert.equal(fs.readlinkSync(`/proc/${pid}/cwd`), fs.realpathSync(path.join(local, 'redis')));
  });

  it('npm start keeps the product up: a SIGKILLed worker is started again; Ctrl-C then stops everything it started', async () => {
    const home = privateHome();
    const local = path.join(home, 'clone', '.local');
    fs.mkdirSync(local, { recursive: true });
    // The Consul binary this run already unpacked (setup would fetch it again for a new folder).
    if (process.env.CONSUL_BIN) fs.symlinkSync(path.resolve(process.env.CONSUL_BIN, '..', '..', '..'), path.join(local, 'consul'));
    const [pg, redis, azurite, api, worker, issuer] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
    const env: Record<string, string> = {
      LOCAL_DIR: local, PG_PORT: String(pg), REDIS_PORT: String(redis), AZURITE_PORT: String(azurite),
      PORT: String(api), WORKER_PORT: String(worker), ISSUER_PORT: String(issuer), LOG_FORMAT: 'json', NODE_ENV: 'test',
    };
    // Not the suite's own identity issuer: start.sh starts its own on ISSUER_PORT.
    for (const k of ['AUTH_ISSUER', 'AUTH_METADATA_URL', 'ISSUER_URL', 'DATABASE_URL', 'REDIS_URL', 'AZURE_STORAGE_CONNECTION_STRING']) env[k] = '';
    const start = spawn('bash', [path.join(REPO, 'infra', 'local', 'start.sh')], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    start.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    start.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    cleanups.push(async () => {
      start.kill('SIGKILL');
      spawnSync('bash', [path.join(REPO, 'infra', 'local', 'stop.sh')], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });
      const root = sourced(LIB, 'echo "$PG_ROOT"', env).stdout.trim();
      if (root.startsWith('/var/lib/postgresql/managed-consul/')) fs.rmSync(root, { recursive: true, force: true });
      fs.rmSync(home, { recursive: true, force: true });
    });
    const healthy = async (port: number) => fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.status === 200, () => false);
    await waitFor('npm start is ready', async () => out.includes('Managed Consul is running') || start.exitCode !== null, (v) => v, 240_000, 250);
    assert.ok(out.includes('Managed Consul is running'), out.slice(-3000));
    assert.ok(await healthy(worker));
    const pidOf = (name: string) => Number(fs.readFileSync(path.join(local, 'run', `${name}.pid`), 'utf8'));
    const first = pidOf('worker');
    process.kill(first, 'SIGKILL');
    await waitFor('the worker is started again', async () => {
      try {
        const pid = pidOf('worker');
        return pid !== first && (await healthy(worker));
      } catch {
        return false;
      }
    }, (v) => v, 60_000, 250);
    const workerLog = () => fs.readFileSync(path.join(local, 'logs', 'worker.log'), 'utf8').slice(-3000);
    assert.match(out, new RegExp(`worker \\(pid ${first}\\) exited with status 137 after \\d+ s; starting it again in 1 s`), workerLog());
    assert.match(fs.readFileSync(path.join(local, 'logs', 'worker.log'), 'utf8'), /supervisor: worker exited with status 137; restarting in 1 s/);
    const running = ['api', 'worker', 'issuer'].map(pidOf);
    start.kill('SIGINT');
    await exited(start);
    for (const pid of running) {
      await waitFor(`pid ${pid} has ended`, async () => !fs.existsSync(`/proc/${pid}`) || fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z'), (v) => v, 20_000, 100);
    }
    assert.equal(fs.existsSync(path.join(local, 'run', 'supervisor.pid')), false);
  });
});

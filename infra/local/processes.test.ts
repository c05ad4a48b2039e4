import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { pgRootOrphaned, portHolder, procAlive, refuseOrReplace, StackError, stopByPidFile } from './processes';

const children: ChildProcess[] = [];
const folders: string[] = [];
after(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const f of folders) fs.rmSync(f, { recursive: true, force: true });
});

const folder = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'processes-'));
  folders.push(dir);
  return dir;
};

/** A node process running SCRIPT; resolves with it and its first line of output (its "ready"). */
function child(script: string, opts: { cwd?: string } = {}): Promise<{ proc: ChildProcess; line: string }> {
  const proc = spawn(process.execPath, ['-e', script], { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(proc);
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve({ proc, line: out.split('\n')[0]! });
    });
    proc.once('exit', (code, sig) => reject(new Error(`exited (${code ?? sig}) before it was ready`)));
  });
}

/** A TCP listener on a port of the kernel's choosing; its first line is the port. */
const LISTENER = "require('node:net').createServer().listen(0, '127.0.0.1', function () { console.log(this.address().port); });";

const exit = (proc: ChildProcess) =>
  new Promise<NodeJS.Signals | number | null>((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) resolve(proc.signalCode ?? proc.exitCode);
    else proc.once('exit', (code, sig) => resolve(sig ?? code));
  });

describe('the local stack processes', () => {
  it('finds the process that listens on a port, and none on a free one', async () => {
    const { proc, line } = await child(LISTENER);
    const port = Number(line);
    assert.equal(portHolder(port), proc.pid);
    proc.kill('SIGTERM');
    await exit(proc);
    assert.equal(portHolder(port), undefined);
  });

  it('stops by pid file: SIGTERM, and SIGKILL after the grace period for a process that ignores SIGTERM', async () => {
    const dir = folder();
    const polite = await child("console.log('ready'); setInterval(() => {}, 1000);");
    fs.writeFileSync(path.join(dir, 'polite.pid'), `${polite.proc.pid}\n`);
    assert.equal(await stopByPidFile(path.join(dir, 'polite.pid'), { graceMs: 10_000 }), polite.proc.pid);
    assert.equal(await exit(polite.proc), 'SIGTERM');

    const stubborn = await child("process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000);");
    const file = path.join(dir, 'stubborn.pid');
    fs.writeFileSync(file, `${stubborn.proc.pid}\n`);
    const started = Date.now();
    assert.equal(await stopByPidFile(file, { graceMs: 300 }), stubborn.proc.pid);
    assert.ok(Date.now() - started >= 300, 'SIGTERM was given its grace period');
    assert.equal(await exit(stubborn.proc), 'SIGKILL');
    assert.equal(procAlive(stubborn.proc.pid!), false);
    assert.equal(fs.existsSync(file), false, 'the pid file is removed');
  });

  it('leaves alone a pid that another process took after the pid file was written', async () => {
    const dir = folder();
    const other = await child("console.log('ready'); setInterval(() => {}, 1000);");
    const file = path.join(dir, 'old.pid');
    fs.writeFileSync(file, `${other.proc.pid}\n`);
    const hourAgo = new Date(Date.now() - 3_600_000);
    fs.utimesSync(file, hourAgo, hourAgo);
    assert.equal(await stopByPidFile(file, { graceMs: 300 }), undefined);
    assert.ok(procAlive(other.proc.pid!));
    assert.equal(fs.existsSync(file), false);
  });

  it("refuses a service on its port that is not this clone's, naming the process and the variable", async () => {
    const data = folder();
    const { proc, line } = await child(LISTENER, { cwd: data });
    const port = Number(line);
    await assert.rejects(refuseOrReplace({ name: 'Redis', port, variable: 'REDIS_PORT', localDir: '/nonexistent/.local' }), (e: unknown) => {
      assert.ok(e instanceof StackError);
      assert.equal(
        e.message,
        `port ${port} is held by pid ${proc.pid} (${process.execPath} -e ${LISTENER}), which is not this clone's Redis (its data: ${data}; this clone's: /nonexistent/.local): stop it, or set REDIS_PORT to a free port`,
      );
      return true;
    });
    assert.ok(procAlive(proc.pid!), 'the other service is left alone');
  });

  it('replaces a service left behind by a clone whose folder is gone', async () => {
    const gone = folder();
    const { proc, line } = await child(LISTENER, { cwd: gone });
    fs.rmSync(gone, { recursive: true });
    await refuseOrReplace({ name: 'Redis', port: Number(line), variable: 'REDIS_PORT', localDir: '/nonexistent/.local', graceMs: 5_000 });
    assert.equal(await exit(proc), 'SIGTERM');
    assert.equal(portHolder(Number(line)), undefined, 'the port is free for this clone');
  });

  it("judges a PostgreSQL folder by its owner's identity", () => {
    const home = folder();
    const id = 'a'.repeat(32);
    const clone = path.join(home, 'clone', '.local');
    fs.mkdirSync(clone, { recursive: true });
    fs.writeFileSync(path.join(clone, 'clone-id'), `${id}\n`);
    const root = (name: string, owner?: string, cloneId?: string) => {
      const dir = path.join(home, name);
      fs.mkdirSync(dir);
      if (cloneId) fs.writeFileSync(path.join(dir, 'clone-id'), `${cloneId}\n`);
      if (owner) fs.writeFileSync(path.join(dir, 'owner'), `${owner}\n`);
      return dir;
    };
    assert.equal(pgRootOrphaned(root('live', clone, id)), false, 'its clone holds its identity');
    assert.equal(pgRootOrphaned(root('remade', clone, 'b'.repeat(32))), true, 'a clone made again at the path has another identity');
    assert.equal(pgRootOrphaned(root('deleted', path.join(home, 'gone', '.local'), id)), true);
    assert.equal(pgRootOrphaned(root('legacy-live', path.join(home, 'clone'))), false, "an earlier version's folder whose clone has no identity");
    assert.equal(pgRootOrphaned(root('legacy-replaced', clone)), true, "an earlier version's folder whose path now holds a clone with an identity");
    assert.equal(pgRootOrphaned(root('unclaimed')), false, 'a folder without an owner is not judged');
  });
});

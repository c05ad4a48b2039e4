import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { freePort, privateHome, sourced } from './support/local-clone';
import { waitFor } from './support/stack';

const REPO = path.resolve(__dirname, '..', '..');
const PG_BIN = '/usr/lib/postgresql/15/bin';

/** A parent folder for this file's PostgreSQL folders (PG_CLUSTERS_DIR), apart from the machine's clones'. */
function clustersDir(): string {
  const dir = `/var/lib/postgresql/managed-consul-test-${crypto.randomBytes(6).toString('hex')}`;
  fs.mkdirSync(dir, { mode: 0o755 });
  return dir;
}

/** Stops every PostgreSQL server still running on a cluster under DIR, then removes DIR. */
function removeClusters(dir: string): void {
  for (const name of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    const data = path.join(dir, name, 'data');
    if (fs.existsSync(path.join(data, 'postmaster.pid'))) {
      spawnSync('runuser', ['-u', 'postgres', '--', `${PG_BIN}/pg_ctl`, '-D', data, 'stop', '-m', 'immediate', '-w', '-t', '60'], { cwd: '/', stdio: 'ignore' });
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * `git clone` of this checkout at DEST, with the local-stack scripts of this working tree (the code under test)
 * and their process management as built (dist/infra/local/processes.js: setup.sh builds before it starts services).
 */
function cloneAt(dest: string): void {
  const r = spawnSync('git', ['clone', '-q', REPO, dest], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  fs.cpSync(path.join(REPO, 'infra', 'local'), path.join(dest, 'infra', 'local'), { recursive: true });
  fs.mkdirSync(path.join(dest, 'dist', 'infra', 'local'), { recursive: true });
  fs.copyFileSync(path.join(REPO, 'dist', 'infra', 'local', 'processes.js'), path.join(dest, 'dist', 'infra', 'local', 'processes.js'));
}

const sql = (port: number, query: string) =>
  spawnSync('psql', [`postgresql://consul_cloud:consul_cloud@127.0.0.1:${port}/consul_cloud`, '-X', '-Atqc', query], { encoding: 'utf8' });
const markers = (port: number) => sql(port, "SELECT string_agg(datname, ',') FROM pg_database WHERE datname LIKE 'marker_%'").stdout.trim();
const readId = (file: string) => fs.readFileSync(file, 'utf8').trim();
const alive = (pid: number) => fs.existsSync(`/proc/${pid}`) && !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');

// Issue 21 §4: a clone's data lives and dies with the clone, not with its path.
describe("a clone's PostgreSQL cluster belongs to the clone, not to its path", () => {
  const cleanups: (() => void | Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('a clone deleted and cloned again at the same path gets a fresh cluster, and the deleted clone\'s data is removed', async () => {
    const home = privateHome();
    const clone = path.join(home, 'managed-consul');
    const clusters = clustersDir();
    const [pg, redis] = await Promise.all([freePort(), freePort()]);
    // LOCAL_DIR empty: the clone's own .local, as in a fresh checkout. REDIS_PORT: stop.sh must not reach another stack's Redis.
    const env = { LOCAL_DIR: '', PG_CLUSTERS_DIR: clusters, PG_PORT: String(pg), REDIS_PORT: String(redis) };
    cleanups.push(() => {
      removeClusters(clusters);
      fs.rmSync(home, { recursive: true, force: true });
    });
    const local = path.join(clone, '.local');
    const setUp = () => {
      // The PostgreSQL step of infra/local/setup.sh.
      const r = sourced(path.join(clone, 'infra', 'local', 'lib.sh'), 'mkdir -p "$LOCAL/run" "$LOCAL/logs"; ensure_postgres', env, clone);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(spawnSync(`${PG_BIN}/pg_isready`, ['-q', '-h', '127.0.0.1', '-p', String(pg)]).status, 0);
      const id = readId(path.join(local, 'clone-id'));
      assert.match(id, /^[0-9a-f]{32}$/);
      const root = path.join(clusters, id);
      assert.equal(readId(path.join(root, 'clone-id')), id, 'the cluster records the identity of its clone');
      assert.equal(readId(path.join(root, 'owner')), local, 'and the clone it belongs to');
      return { id, root, stderr: r.stderr };
    };

    // Folders of other clones: a live one (with an identity), one of an earlier version whose clone is
    // still there, one of an earlier version whose clone is gone, and one not yet claimed (no owner).
    const other = fs.mkdtempSync(path.join(home, 'other-'));
    const otherId = crypto.randomBytes(16).toString('hex');
    fs.mkdirSync(path.join(other, '.local'));
    fs.writeFileSync(path.join(other, '.local', 'clone-id'), `${otherId}\n`);
    const planted = (name: string, owner: string | null, id?: string) => {
      const root = path.join(clusters, name);
      fs.mkdirSync(path.join(root, 'data'), { recursive: true });
      if (id) fs.writeFileSync(path.join(root, 'clone-id'), `${id}\n`);
      if (owner) fs.writeFileSync(path.join(root, 'owner'), `${owner}\n`);
      return root;
    };
    const live = planted(otherId, path.join(other, '.local'), otherId);
    // A clone set up by an earlier version only: its .local has no identity yet.
    const older = fs.mkdtempSync(path.join(home, 'older-'));
    fs.mkdirSync(path.join(older, '.local'));
    const legacyLive = planted('0123456789abcdef', path.join(older, '.local'));
    // The earlier version's folder of a path that now holds a clone with an identity: left by a clone deleted before.
    const legacyReplaced = planted('00112233445566aa', path.join(other, '.local'));
    const legacyGone = planted('fedcba9876543210', path.join(home, 'deleted-long-ago', '.local'));
    const unclaimed = planted(crypto.randomBytes(16).toString('hex'), null);

    // 1st clone: its cluster gets a marker; stopped (npm run stop), then the clone is deleted.
    cloneAt(clone);
    const first = setUp();
    assert.equal(sql(pg, 'CREATE DATABASE marker_first').status, 0);
    assert.equal(markers(pg), 'marker_first');
    const stop = spawnSync('bash', [path.join(clone, 'infra', 'local', 'stop.sh')], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });
    assert.equal(stop.status, 0, stop.stderr);
    assert.notEqual(spawnSync(`${PG_BIN}/pg_isready`, ['-q', '-h', '127.0.0.1', '-p', String(pg)]).status, 0, 'stopped');
    fs.rmSync(clone, { recursive: true, force: true });

    // 2nd clone at the same path: a fresh cluster, never the 1st clone's, whose folder is removed.
    cloneAt(clone);
    const second = setUp();
    assert.notEqual(second.id, first.id, 'a new clone at an old path has a new identity');
    assert.equal(markers(pg), '', "the 1st clone's data is not adopted");
    assert.ok(!fs.existsSync(first.root), `the deleted clone's PostgreSQL folder is removed (${second.stderr})`);
    assert.ok(fs.existsSync(live), "a live clone's folder is kept");
    assert.ok(fs.existsSync(legacyLive), "an earlier version's folder whose clone is there is kept");
    assert.ok(!fs.existsSync(legacyGone), "an earlier version's folder whose clone is gone is removed");
    assert.ok(!fs.existsSync(legacyReplaced), "an earlier version's folder whose path now holds another clone is removed");
    assert.ok(fs.existsSync(unclaimed), 'a folder naming no owner is not judged');

    // Again, this time deleted while its PostgreSQL still runs on the port the 3rd clone wants.
    assert.equal(sql(pg, 'CREATE DATABASE marker_second').status, 0);
    const leftover = Number(fs.readFileSync(path.join(second.root, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
    fs.rmSync(clone, { recursive: true, force: true });
    cloneAt(clone);
    const third = setUp();
    assert.notEqual(third.id, second.id);
    assert.match(third.stderr, new RegExp(`PostgreSQL on port ${pg} \\(pid ${leftover}: [^)]*\\) belongs to a clone that is gone \\(its folder was ${local}\\)`));
    await waitFor('the leftover server has ended', async () => alive(leftover), (up) => !up, 30_000);
    assert.equal(markers(pg), '', "the 2nd clone's data is not adopted");
    assert.ok(!fs.existsSync(second.root), "the 2nd clone's folder is removed once its server is stopped");
    assert.ok(fs.existsSync(live));

    // Setting up the same clone again keeps its cluster.
    assert.equal(sql(pg, 'CREATE DATABASE marker_third').status, 0);
    assert.equal(setUp().id, third.id);
    assert.equal(markers(pg), 'marker_third');
    assert.equal(spawnSync('bash', [path.join(clone, 'infra', 'local', 'stop.sh')], { env: { ...process.env, ...env }, timeout: 120_000 }).status, 0);
  });

  it("a clone set up by an earlier version keeps its cluster (moved to its identity); a copy of a clone gets an identity of its own", () => {
    const home = privateHome();
    const clusters = clustersDir();
    cleanups.push(() => {
      removeClusters(clusters);
      fs.rmSync(home, { recursive: true, force: true });
    });
    const lib = path.join(REPO, 'infra', 'local', 'lib.sh');
    const local = path.join(home, 'clone', '.local');
    // What an earlier version left: the folder named from a hash of .local's path, and .local's link to its log.
    const legacy = path.join(clusters, crypto.createHash('sha256').update(local).digest('hex').slice(0, 16));
    fs.mkdirSync(path.join(legacy, 'data'), { recursive: true });
    fs.writeFileSync(path.join(legacy, 'data', 'PG_VERSION'), '15\n');
    fs.writeFileSync(path.join(legacy, 'owner'), `${local}\n`);
    fs.mkdirSync(path.join(local, 'logs'), { recursive: true });
    fs.symlinkSync(path.join(legacy, 'postgres.log'), path.join(local, 'logs', 'postgres.log'));
    const env = { LOCAL_DIR: local, PG_CLUSTERS_DIR: clusters };
    const claimed = sourced(lib, 'ensure_clone_id; echo "$PG_ROOT"', env);
    assert.equal(claimed.code, 0, claimed.stderr);
    const id = readId(path.join(local, 'clone-id'));
    assert.equal(claimed.stdout.trim(), path.join(clusters, id));
    assert.equal(readId(path.join(clusters, id, 'data', 'PG_VERSION')), '15', 'the earlier cluster, moved');
    assert.ok(!fs.existsSync(legacy));

    // A copy of the clone, .local included: same clone-id file, but the folder names the original as owner.
    const copy = path.join(home, 'copy', '.local');
    fs.cpSync(local, copy, { recursive: true, verbatimSymlinks: true });
    const copied = sourced(lib, 'ensure_clone_id; echo "$PG_ROOT"', { ...env, LOCAL_DIR: copy });
    assert.equal(copied.code, 0, copied.stderr);
    assert.match(copied.stderr, /is a copy of the clone at/);
    const copyId = readId(path.join(copy, 'clone-id'));
    assert.notEqual(copyId, id);
    assert.equal(copied.stdout.trim(), path.join(clusters, copyId));
    assert.equal(readId(path.join(clusters, id, 'owner')), local, "the original keeps its cluster");
  });
});

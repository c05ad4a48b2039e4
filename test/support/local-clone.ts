import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** A TCP port nothing listens on right now (the kernel's pick). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

/** A folder like root's home on Debian: mode 0700, not traversable by the postgres user. */
export function privateHome(): string {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'home-'));
  fs.chmodSync(home, 0o700);
  return home;
}

/** Runs bash CODE after sourcing the lib.sh at LIB (as setup.sh does), with ENV added; cwd optional. */
export function sourced(lib: string, code: string, env: Record<string, string>, cwd?: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('bash', ['-c', `set -euo pipefail; source "${lib}"; ${code}`], { env: { ...process.env, ...env }, cwd, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

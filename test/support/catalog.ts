import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * A catalog entry for EXTRA_CONSUL_VERSIONS: `version`, a link (in a folder of its own) to the one
 * Consul binary these machines have, honestly reporting 1.8.7. A server's binary path then shows
 * whether it was restarted on the entry. `remove` deletes the folder.
 */
export function linkedVersion(version: string, status: 'RECOMMENDED' | 'AVAILABLE' | 'PREVIEW') {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `consul-${version}-`));
  const link = path.join(work, `consul-${version}`);
  fs.symlinkSync(process.env.CONSUL_BIN!, link);
  return {
    link,
    entry: { version, status, binary: link, reports: '1.8.7' },
    remove: () => fs.rmSync(work, { recursive: true, force: true }),
  };
}

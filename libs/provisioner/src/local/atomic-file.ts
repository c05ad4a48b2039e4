import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/**
 * Writes `content` to `file` only if it differs from what is there, through a
 * temporary file in the same directory, fsync and rename, so a reader (or a
 * worker restarted after SIGKILL) sees either the old or the new file, never a
 * partial one. Fixes the file mode if only that differs. Returns whether
 * anything changed.
 *
 * Temporary names start with "." and end in ".tmp": Consul only loads
 * `.json`/`.hcl` files from a config dir.
 */
export async function writeFileIfChanged(file: string, content: string, mode: number): Promise<boolean> {
  const current = await readIfExists(file);
  if (current !== undefined && current.content === content) {
    if ((current.mode & 0o777) === mode) return false;
    await fs.chmod(file, mode);
    return true;
  }
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await fs.open(tmp, 'wx', mode);
    try {
      await handle.writeFile(content, 'utf8');
      await handle.chmod(mode); // open() applies the umask; set the exact mode
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await syncDirectory(dir);
  return true;
}

/** Removes leftovers of writes interrupted by a SIGKILL between open and rename. */
export async function removeStaleTemporaryFiles(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if (isNotFound(err)) return;
    throw err;
  }
  await Promise.all(
    names.filter((n) => n.startsWith('.') && n.endsWith('.tmp')).map((n) => fs.rm(path.join(dir, n), { force: true })),
  );
}

async function readIfExists(file: string): Promise<{ content: string; mode: number } | undefined> {
  try {
    const [content, stat] = await Promise.all([fs.readFile(file, 'utf8'), fs.stat(file)]);
    return { content, mode: stat.mode };
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

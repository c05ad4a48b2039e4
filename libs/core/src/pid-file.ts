import fs from 'node:fs';
import path from 'node:path';

/** Records this process's pid so `npm run stop` can stop it; removed on a clean exit. */
export function writePidFile(localDir: string, name: string): void {
  const dir = path.join(localDir, 'run');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.pid`);
  fs.writeFileSync(file, `${process.pid}\n`);
  process.on('exit', () => {
    try {
      if (fs.readFileSync(file, 'utf8').trim() === String(process.pid)) fs.unlinkSync(file);
    } catch {
      /* already gone */
    }
  });
}

/**
 * `npm run package:managed-app`: the managed application's package, a zip with
 * createUiDefinition.json and mainTemplate.json at its root and the cluster
 * template mainTemplate links (nestedtemplates/cluster.json). Written to
 * dist/managed-app.zip, or the path given as the first argument.
 */
import fs from 'node:fs';
import path from 'node:path';
import { zip, type ZipEntry } from './zip';

const repoRoot = path.resolve(__dirname, '..', '..', '..');

export const PACKAGE_FILES: ReadonlyArray<{ name: string; source: string }> = [
  { name: 'createUiDefinition.json', source: 'infra/managed-app/createUiDefinition.json' },
  { name: 'mainTemplate.json', source: 'infra/managed-app/mainTemplate.json' },
  { name: 'nestedtemplates/cluster.json', source: 'infra/arm/cluster.json' },
];

export function buildManagedAppPackage(root = repoRoot): Buffer {
  const entries: ZipEntry[] = PACKAGE_FILES.map((f) => {
    const data = fs.readFileSync(path.join(root, f.source));
    JSON.parse(data.toString('utf8')); // a file that does not parse is never packaged
    return { name: f.name, data };
  });
  return zip(entries);
}

if (require.main === module) {
  const out = path.resolve(process.argv[2] ?? path.join(repoRoot, 'dist', 'managed-app.zip'));
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, buildManagedAppPackage());
  console.log(`wrote ${path.relative(process.cwd(), out) || out} (${PACKAGE_FILES.map((f) => f.name).join(', ')})`);
}

import type { SecretRepository } from '../../../../libs/core/src';

export const SECRETS_AT_REST_USAGE = [
  'usage: npm run secrets-at-rest -- <command>',
  '  check                              list the cluster secrets still sealed in format 1 (cluster, name, stored at); exit 1 if any',
  '  reseal-format-1 --cluster ID|--all re-seal those rows bound to the row they are in (only rows known to be where they were sealed)',
].join('\n');

/**
 * The operator's commands for secrets at rest. Format-1 rows carry nothing that says which row
 * they were sealed for, so no process re-seals them on its own: the operator lists them, checks
 * that they are leftovers from before 2026-12-02 (not copies), and re-seals them by cluster or all.
 * Output names rows, never values. Exit: 0 done / none left, 1 rows left or failed, 2 usage.
 */
export async function secretsAtRest(argv: readonly string[], secrets: SecretRepository, out: (line: string) => void): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'check' && rest.length === 0) {
    const rows = await secrets.listUnbound();
    if (rows.length === 0) {
      out('no cluster secret is sealed in format 1: every one is bound to its row');
      return 0;
    }
    for (const r of rows) out(`format 1: cluster ${r.clusterId} secret ${r.name} (stored ${r.createdAt.toISOString()})`);
    out(`${rows.length} cluster secret(s) sealed in format 1: refused on read until re-sealed (reseal-format-1 --cluster ID, or --all)`);
    return 1;
  }
  if (command === 'reseal-format-1') {
    const scope = parseScope(rest);
    if (scope === null) {
      out(SECRETS_AT_REST_USAGE);
      return 2;
    }
    const report = await secrets.resealFormat1(scope === 'all' ? undefined : scope);
    for (const r of report.resealed) out(`re-sealed: cluster ${r.clusterId} secret ${r.name}`);
    for (const f of report.failed) out(`left as it is: cluster ${f.clusterId} secret ${f.name}: ${f.reason}`);
    out(`${report.resealed.length} re-sealed, ${report.failed.length} failed`);
    return report.failed.length ? 1 : 0;
  }
  out(SECRETS_AT_REST_USAGE);
  return 2;
}

/** `--all`, or `--cluster <uuid>`; null for anything else. */
function parseScope(args: readonly string[]): 'all' | string | null {
  if (args.length === 1 && args[0] === '--all') return 'all';
  if (args.length === 2 && args[0] === '--cluster' && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(args[1]!)) return args[1]!.toLowerCase();
  return null;
}

import fs from 'node:fs';
import { CONSUL_TOKEN_HEADER, type KubernetesConfigView } from '../../../../libs/contracts/src';
import { command, type CommandContext } from '../command';
import { firstLine } from '../stdin';
import { makeToken } from './tokens';

/** What the chart's bootstrap token is for, recorded on the token in Consul and in the control plane's token list. */
const TOKEN_DESCRIPTION = "consul helm chart: server-acl-init bootstrap token (hcs kubernetes)";

/** The bootstrap token's SecretID: from --token-file (or stdin with '-'), else a new management token made for it. */
async function bootstrapToken(ctx: CommandContext, clusterId: string): Promise<string> {
  const file = ctx.args.string('token-file');
  if (file !== undefined) {
    const text = file === '-' ? await firstLine(ctx.io.stdin ?? process.stdin) : fs.readFileSync(file, 'utf8');
    const token = text.trim();
    if (!token) throw ctx.args.fail(`--token-file ${file} holds no token`);
    return token;
  }
  const made = await makeToken(ctx, clusterId, TOKEN_DESCRIPTION);
  // On stderr: stdout is the Secret alone, ready for a file or kubectl apply -f -.
  ctx.io.stderr.write(`Made management token ${made.accessorId} for the chart's server-acl-init job; it is in the Secret. `
    + `Once the install has completed you may revoke it: hcs tokens revoke ${clusterId} ${made.accessorId} (a later helm upgrade needs a new one).\n`);
  return made.secretId;
}

export const kubernetes = command({
  name: 'kubernetes',
  summary: "Kubernetes (AKS) onboarding: print values.yaml for HashiCorp's Consul Helm chart (--helm-values) or the Secret it reads (--secret): client agents in Kubernetes joining the cluster",
  positionals: ['ID'],
  options: {
    'helm-values': { type: 'boolean', description: "print the chart's values.yaml (no secret in it; the chart version to install is in its first line)" },
    secret: { type: 'boolean', description: 'print the Secret: CA, gossip key and a bootstrap token (a management token made for the chart unless --token-file gives one)' },
    'token-file': { type: 'string', value: 'FILE', description: "with --secret: the bootstrap token's SecretID from FILE ('-' reads stdin) instead of making a token" },
    'k8s-auth-method-host': { type: 'string', value: 'URL', description: "with --helm-values: the AKS API server's https URL, reachable from the Consul servers (Connect's auth method)" },
  },
  async run(ctx) {
    const a = ctx.args;
    if (a.flag('secret') === a.flag('helm-values')) throw a.fail('choose one document: --helm-values or --secret');
    if (a.flag('helm-values') && a.string('token-file') !== undefined) throw a.fail('--token-file goes with --secret');
    const clusterId = a.positionals[0]!;
    const host = a.string('k8s-auth-method-host');
    const path = `/v1/clusters/${encodeURIComponent(clusterId)}/kubernetes${host === undefined ? '' : `?k8sAuthMethodHost=${encodeURIComponent(host)}`}`;
    if (a.flag('helm-values')) {
      const res = await ctx.api().get<KubernetesConfigView>(path);
      return ctx.output.result(res, () => ctx.io.stdout.write(res.helmValues));
    }
    const token = await bootstrapToken(ctx, clusterId);
    const res = await ctx.api().get<KubernetesConfigView>(path, { [CONSUL_TOKEN_HEADER]: token });
    if (res.secret === undefined) throw new Error(`the API answered without the Secret: ${res.secretOmitted ?? 'no reason given'}`);
    const secret = res.secret;
    ctx.output.result(res, () => ctx.io.stdout.write(secret));
  },
});

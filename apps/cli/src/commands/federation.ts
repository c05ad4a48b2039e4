import type { FederationTokenView, FederationView } from '../../../../libs/contracts/src';
import { command } from '../command';

const clusterPath = (id: string) => `/v1/clusters/${encodeURIComponent(id)}`;

export const federationToken = command({
  name: 'federation-token',
  summary: "Make a single-use token (1 h) a new cluster joins this Running cluster's federation with, as a secondary (clusters create --federation-token)",
  positionals: ['ID'],
  options: { quiet: { type: 'boolean', description: 'print the token alone, for a script or a pipe into --federation-token -' } },
  async run(ctx) {
    const quiet = ctx.args.flag('quiet');
    if (quiet && ctx.output.json) throw ctx.args.fail('give --quiet or --json, not both');
    const id = ctx.args.positionals[0]!;
    const t = await ctx.api().post<FederationTokenView>(`${clusterPath(id)}/federation-token`);
    if (quiet) return ctx.output.line(t.token);
    ctx.output.result(t, () => {
      ctx.output.fields([
        ['Token', t.token],
        ['Expires', t.expiresAt],
        ['Primary', `${t.primaryClusterId} (datacenter ${t.primaryDatacenter})`],
      ]);
      ctx.output.line('The token is shown this once and works once: store it now.');
      ctx.output.line(`Create the secondary with it (a datacenter of its own, the primary's Consul version): hcs clusters create ... --datacenter DC --federation-token TOKEN`);
    });
  },
});

export const federation = command({
  name: 'federation',
  summary: "Show a cluster's federation: its role, the federation's state and every member",
  positionals: ['ID'],
  async run(ctx) {
    const id = ctx.args.positionals[0]!;
    const f = await ctx.api().get<FederationView>(`${clusterPath(id)}/federation`);
    ctx.output.result(f, () => {
      if (f.role === 'none') {
        ctx.output.line(`Cluster ${id} is not federated.`);
        ctx.output.line(`'hcs clusters federation-token ${id}' makes a token a new cluster joins it with, as a secondary.`);
        return;
      }
      ctx.output.fields([['Role', f.role], ['State', f.state]]);
      ctx.output.line();
      const members = [...(f.primary ? [{ role: 'primary', m: f.primary }] : []), ...f.secondaries.map((m) => ({ role: 'secondary', m }))];
      ctx.output.table(
        ['ROLE', 'ID', 'NAME', 'DATACENTER', 'REGION', 'STATE', 'HEALTH'],
        members.map(({ role, m }) => [m.clusterId === id ? `${role} (this one)` : role, m.clusterId, m.name, m.datacenter, m.region, m.state, m.health]),
      );
    });
  },
});

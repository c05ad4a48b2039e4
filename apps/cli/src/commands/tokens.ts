import type { IssuedTokenView as IssuedTokenListEntry, TokenSecretView as IssuedTokenView, OperationView, PendingTokenView as TokenAccepted } from '../../../../libs/contracts/src';
import { command, group, type CommandContext } from '../command';
import { followHint, waitForOperation } from '../operation-watch';

const tokensPath = (clusterId: string) => `/v1/clusters/${encodeURIComponent(clusterId)}/tokens`;
const collectPath = (operationId: string) => `/v1/operations/${encodeURIComponent(operationId)}/token`;

function printSecret(ctx: CommandContext, t: IssuedTokenView): void {
  ctx.output.result(t, () => {
    ctx.output.fields([
      ['Accessor ID', t.accessorId],
      ['Secret ID', t.secretId],
    ]);
    ctx.output.line('The secret is shown this once: store it now.');
  });
}

/** Collects the secret of a create-token operation once it has Succeeded: a POST, as it is handed out once (to whoever asked for the token, or an operator). */
async function collectSecret(ctx: CommandContext, operationId: string): Promise<IssuedTokenView> {
  await waitForOperation(ctx, operationId);
  return ctx.api().post<IssuedTokenView>(collectPath(operationId));
}

async function collect(ctx: CommandContext, operationId: string): Promise<void> {
  printSecret(ctx, await collectSecret(ctx, operationId));
}

/** A new management token on the cluster, its secret in hand: from the answer (201), or collected through its operation (202). */
export async function makeToken(ctx: CommandContext, clusterId: string, description: string | undefined): Promise<IssuedTokenView> {
  const res = await ctx.api().post<IssuedTokenView | TokenAccepted>(tokensPath(clusterId), description === undefined ? {} : { description });
  // 202: the API stopped waiting; the secret is collected through the operation, now, before its collection window ends.
  return 'collect' in res ? collectSecret(ctx, res.operation.id) : res;
}

const create = command({
  name: 'create',
  summary: 'Create an ACL management token for the cluster; its secret is shown once',
  positionals: ['CLUSTER'],
  options: { description: { type: 'string', value: 'TEXT', description: 'what the token is for, recorded in Consul' } },
  async run(ctx) {
    printSecret(ctx, await makeToken(ctx, ctx.args.positionals[0]!, ctx.args.string('description')));
  },
});

const collectCommand = command({
  name: 'collect',
  summary: 'Collect the secret of a token a create-token operation made: once, by the user who asked for it or an operator (after that, or after the collection window, the API answers 410)',
  positionals: ['OPERATION'],
  async run(ctx) {
    await collect(ctx, ctx.args.positionals[0]!);
  },
});

const list = command({
  name: 'list',
  summary: 'List the tokens made through the control plane on a cluster (accessor, description, state; never secrets)',
  positionals: ['CLUSTER'],
  async run(ctx) {
    const res = await ctx.api().get<{ tokens: IssuedTokenListEntry[] }>(tokensPath(ctx.args.positionals[0]!));
    ctx.output.result(res, () => {
      if (!res.tokens.length) return ctx.output.line('No tokens made through the control plane.');
      ctx.output.table(
        ['ACCESSOR', 'STATE', 'COLLECTED', 'CREATED', 'CREATED BY', 'DESCRIPTION'],
        res.tokens.map((t) => [t.accessorId, t.revokeReason && t.state === 'revoked' ? `revoked (${t.revokeReason})` : t.state, t.collected ? 'yes' : 'no', t.createdAt, t.createdBy, t.description]),
      );
    });
  },
});

const revoke = command({
  name: 'revoke',
  summary: 'Revoke a token made through the control plane (deleted in Consul by a revoke-token operation)',
  positionals: ['CLUSTER', 'ACCESSOR'],
  options: { wait: { type: 'boolean', description: 'wait until Consul rejects the token, showing progress' } },
  async run(ctx) {
    const [clusterId, accessorId] = ctx.args.positionals as [string, string];
    const res = await ctx.api().delete<{ operation: OperationView; token: IssuedTokenListEntry }>(`${tokensPath(clusterId)}/${encodeURIComponent(accessorId)}`);
    if (!ctx.args.flag('wait')) return ctx.output.result(res, () => ctx.output.line(`Revoking token ${accessorId}. ${followHint(res.operation)}`));
    const op = await waitForOperation(ctx, res.operation.id);
    ctx.output.result(op, () => ctx.output.line(`Token ${accessorId} revoked: Consul rejects it.`));
  },
});

/** `hcs clusters token ID`, as before: the same as `hcs tokens create`. */
export const clusterToken = command({ ...create, name: 'token' });

export const tokens = group('tokens', 'Create, collect, list and revoke ACL tokens of a cluster', [create, collectCommand, list, revoke]);

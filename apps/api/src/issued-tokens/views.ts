import type { IssuedTokenView } from '../../../../libs/contracts/src';
import type { IssuedToken } from '../../../../libs/core/src';

export const collectLink = (operationId: string) => `/v1/operations/${operationId}/token`;

/** A token as GET /v1/clusters/{id}/tokens shows it: never its secret. */
export function issuedTokenView(t: IssuedToken): IssuedTokenView {
  return {
    accessorId: t.accessorId,
    description: t.description,
    createdAt: t.createdAt.toISOString(),
    createdBy: t.createdBy,
    state: t.state.toLowerCase(),
    operationId: t.operationId,
    collected: t.collectedAt !== null,
    collectedAt: t.collectedAt?.toISOString() ?? null,
    // Until then its secret may be collected (POST collect); after it, an uncollected token is revoked.
    collectBy: t.collectedAt === null ? (t.collectBy?.toISOString() ?? null) : null,
    revokedAt: t.revokedAt?.toISOString() ?? null,
    revokeReason: t.revokeReason,
  };
}

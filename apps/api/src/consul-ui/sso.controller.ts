import { ROUTES } from '../../../../libs/contracts/src';
import { Controller, Inject, Param, Query, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  TenantClusterRepository, ClusterState, ConflictError, ConsulUiSessionRepository, NotFoundError, ROLES, UnauthenticatedError, isUuid, type Config,
} from '../../../../libs/core/src';
import { missingRole } from '../auth/principal';
import { ConsoleSessions, principalOf } from '../console/console-sessions';
import { isDomainError, sendError, wantsHtml } from '../console/pages';
import { hashSecret, newSecret } from '../console/session-secret';
import { CONFIG } from '../tokens';
import { UI_ORIGINS } from './consul-ui.tokens';
import type { UiOrigins } from './ui-origins';
import { UI_STATES } from './ui-session-gate';
import { Route } from '../validation/input';
import { consoleLocation } from '../console/return-to';
import { ConsoleOrigin } from '../console/console-sessions';

/**
 * "Open Consul UI": the signed-in user (console cookie) must be allowed the cluster (its tenant,
 * Clusters.Read or Clusters.ReadWrite). The sign-in is bound to the browser on the UI origin
 * (which the console cannot set cookies for): without `bind`, the browser is sent to the UI
 * origin's /_sso/start, which sets that origin's binding cookie and sends it back here with the
 * cookie's hash in `bind`; with it, a one-time code bound to the user, the session, the cluster
 * and that hash (random, stored hashed, CONSOLE_SSO_CODE_TTL_S) and a redirect to the UI
 * origin's /_sso/callback, which redeems it only from the browser holding the cookie.
 * A refused user gets a page and no code.
 */
@Controller()
export class SsoController {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(UI_ORIGINS) private readonly origins: UiOrigins,
    private readonly sessions: ConsoleSessions,
    private readonly clusters: TenantClusterRepository,
    private readonly uiSessions: ConsulUiSessionRepository,
    private readonly consoleOrigin: ConsoleOrigin,
  ) {}

  @Route(ROUTES.openConsulUi)
  async open(@Param('clusterId') clusterId: string, @Query('bind') bind: string | undefined, @Req() req: FastifyRequest, @Res() reply: FastifyReply) {
    const back = [{ href: '/', label: 'Back to the console' }];
    try {
      const found = await this.sessions.resolve(req.headers.cookie);
      if (!found) {
        if (wantsHtml(req)) {
          const here = `/sso/clusters/${clusterId}${bind ? `?bind=${bind}` : ''}`;
          return reply.header('cache-control', 'no-store').redirect(consoleLocation(this.consoleOrigin.value, `/auth/login?returnTo=${encodeURIComponent(here)}`), 302);
        }
        throw new UnauthenticatedError('not_signed_in', 'no console session: sign in at /auth/login');
      }
      const principal = principalOf(found.session);
      const denied = missingRole(principal, [ROLES.read, ROLES.write], this.config.OPERATOR_TENANT_ID);
      if (denied) throw denied;
      // Another tenant's cluster is not there (404), as everywhere in the API.
      const cluster = isUuid(clusterId) ? await this.clusters.findForTenant(principal.tenantId, clusterId.toLowerCase()) : null;
      if (!cluster || cluster.state === ClusterState.Deleted) throw new NotFoundError('cluster_not_found', `you have no cluster ${clusterId}`);
      if (!UI_STATES.has(cluster.state)) throw new ConflictError('cluster_not_running', `the cluster is ${cluster.state}; its Consul UI opens once it is Running`);
      if (bind === undefined) {
        return reply.header('cache-control', 'no-store').redirect(`${this.origins.originFor(cluster.id)}/_sso/start`, 302);
      }
      const code = newSecret();
      await this.uiSessions.createCode({
        codeHash: hashSecret(code), browserHash: bind, sessionId: found.session.id, clusterId: cluster.id, tenantId: principal.tenantId, userId: principal.userId,
        expiresAt: new Date(Date.now() + this.config.CONSOLE_SSO_CODE_TTL_S * 1000),
      });
      return reply
        .header('cache-control', 'no-store')
        .header('referrer-policy', 'no-referrer')
        .redirect(`${this.origins.originFor(cluster.id)}/_sso/callback?code=${code}`, 302);
    } catch (e) {
      if (isDomainError(e)) return sendError(req, reply, e, back);
      throw e;
    }
  }
}

import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { UnauthenticatedError, UnavailableError, type Config, type Role } from '../../../../libs/core/src';
import { AUTHENTICATOR, CONFIG } from '../tokens';
import { ConsoleSessions, csrfRequired, isMutating, principalOf } from '../console/console-sessions';
import { csrfMatches } from '../console/session-secret';
import { AuthenticationError, IdentityProviderUnavailableError, type BearerAuthenticator } from './bearer-authenticator';
import { PUBLIC_ROUTE, REQUIRED_ROLES, missingRole, type Principal } from './principal';

interface GuardedRequest {
  method: string;
  headers: Record<string, string | string[] | undefined>;
  principal?: Principal;
}

/**
 * Every route needs a caller unless marked @Public(); roles come from @AnyRole(). The caller is
 * the bearer token's when there is an Authorization header (exactly as before the console), else
 * the console session's cookie; a change made with the cookie also needs its CSRF token in
 * X-CSRF-Token (403 csrf_required before anything else runs). Either way, roles are decided by
 * missingRole alone.
 */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    @Inject(AUTHENTICATOR) private readonly authenticator: BearerAuthenticator,
    @Inject(CONFIG) private readonly config: Config,
    private readonly sessions: ConsoleSessions,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const targets = [ctx.getHandler(), ctx.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets)) return true;
    const req = ctx.switchToHttp().getRequest<GuardedRequest>();
    req.principal = (await this.fromSession(req)) ?? (await this.fromBearer(req));
    const roles = this.reflector.getAllAndOverride<Role[] | undefined>(REQUIRED_ROLES, targets);
    const denied = roles && missingRole(req.principal, roles, this.config.OPERATOR_TENANT_ID);
    if (denied) throw denied;
    return true;
  }

  /** The console session's principal, when the request has no Authorization header and a live session cookie. */
  private async fromSession(req: GuardedRequest): Promise<Principal | undefined> {
    if (req.headers.authorization !== undefined) return undefined;
    const found = await this.sessions.resolve(req.headers.cookie);
    if (!found) return undefined;
    if (isMutating(req.method) && !csrfMatches(found.secret, req.headers['x-csrf-token'])) throw csrfRequired();
    return principalOf(found.session);
  }

  private async fromBearer(req: GuardedRequest): Promise<Principal> {
    try {
      return await this.authenticator.authenticate(req);
    } catch (e) {
      if (e instanceof AuthenticationError) throw new UnauthenticatedError('unauthenticated', `authentication failed: ${e.reason}`);
      if (e instanceof IdentityProviderUnavailableError) throw new UnavailableError('identity_provider_unavailable', 'tokens cannot be checked right now; try again shortly');
      throw e;
    }
  }
}

import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { UnauthenticatedError, UnavailableError, type Config, type Role } from '../../../../libs/core/src';
import { AUTHENTICATOR, CONFIG } from '../tokens';
import { AuthenticationError, IdentityProviderUnavailableError, type BearerAuthenticator } from './bearer-authenticator';
import { PUBLIC_ROUTE, REQUIRED_ROLES, missingRole, type Principal } from './principal';

/** Every route needs a valid bearer token unless marked @Public(); roles come from @AnyRole(). */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    @Inject(AUTHENTICATOR) private readonly authenticator: BearerAuthenticator,
    @Inject(CONFIG) private readonly config: Config,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const targets = [ctx.getHandler(), ctx.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets)) return true;
    const req = ctx.switchToHttp().getRequest<{ headers: Record<string, string | string[] | undefined>; principal?: Principal }>();
    try {
      req.principal = await this.authenticator.authenticate(req);
    } catch (e) {
      if (e instanceof AuthenticationError) throw new UnauthenticatedError('unauthenticated', `authentication failed: ${e.reason}`);
      if (e instanceof IdentityProviderUnavailableError) throw new UnavailableError('identity_provider_unavailable', 'tokens cannot be checked right now; try again shortly');
      throw e;
    }
    const roles = this.reflector.getAllAndOverride<Role[] | undefined>(REQUIRED_ROLES, targets);
    const denied = roles && missingRole(req.principal, roles, this.config.OPERATOR_TENANT_ID);
    if (denied) throw denied;
    return true;
  }
}

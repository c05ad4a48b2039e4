import { createParamDecorator, type ExecutionContext, SetMetadata } from '@nestjs/common';
import type { Role } from '../../../../libs/core/src';

export interface Principal {
  tenantId: string;
  userId: string;
  name: string;
  roles: ReadonlySet<string>;
}

export const PUBLIC_ROUTE = 'route:public';
export const REQUIRED_ROLES = 'route:roles';

/** No token needed (health, metrics, docs). */
export const Public = () => SetMetadata(PUBLIC_ROUTE, true);

/** The caller needs at least one of these roles. */
export const AnyRole = (...roles: Role[]) => SetMetadata(REQUIRED_ROLES, roles);

export const Caller = createParamDecorator((_data: unknown, ctx: ExecutionContext): Principal => {
  const req = ctx.switchToHttp().getRequest<{ principal?: Principal }>();
  if (!req.principal) throw new Error('route has no authenticated principal');
  return req.principal;
});

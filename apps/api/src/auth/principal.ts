import { createParamDecorator, type ExecutionContext, SetMetadata } from '@nestjs/common';
import { ForbiddenError, ROLES, type Role } from '../../../../libs/core/src';

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

/**
 * The one rule for app roles, used by every route (AuthGuard) and the queues board: a role
 * counts as the token states it, except Platform.SRE, which counts only in a token from the
 * operator's own tenant (OPERATOR_TENANT_ID). In a multi-tenant app registration a customer's
 * admin can assign any app role in their own tenant, so a role alone never grants operator
 * rights; with no operator tenant configured there are no SRE rights at all.
 * Returns the 403 to answer, or undefined when one of the roles is held.
 */
export function missingRole(principal: Pick<Principal, 'tenantId' | 'roles'>, anyOf: readonly Role[], operatorTenantId: string | undefined): ForbiddenError | undefined {
  const holds = (r: Role) => principal.roles.has(r) && (r !== ROLES.sre || (operatorTenantId !== undefined && principal.tenantId === operatorTenantId));
  if (anyOf.some(holds)) return undefined;
  const details = { requiredRoles: [...anyOf] };
  if (anyOf.includes(ROLES.sre) && principal.roles.has(ROLES.sre)) {
    const why = operatorTenantId === undefined
      ? 'no operator tenant is configured (OPERATOR_TENANT_ID), so no token carries operator rights'
      : "the token's tenant is not the operator's";
    return new ForbiddenError('forbidden', `${ROLES.sre} is honoured only in tokens from the operator's own tenant: ${why}`, details);
  }
  return new ForbiddenError('forbidden', `this action needs one of the roles: ${anyOf.join(', ')}`, details);
}

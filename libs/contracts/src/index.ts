import { ADMIN_ROUTES } from './admin';
import { AUDIT_EXPORT_ROUTES } from './audit-export';
import { BILLING_ROUTES } from './billing';
import { CLUSTER_ROUTES } from './clusters';
import { CONSOLE_ROUTES } from './console';
import { FEDERATION_ROUTES } from './federation';
import { KUBERNETES_ROUTES } from './kubernetes';
import { OPERATION_ROUTES } from './operations';
import { SNAPSHOT_ROUTES } from './snapshots';
import { SYSTEM_ROUTES } from './system';
import { TOKEN_ROUTES } from './tokens';

export * from './route';
export * from './fields';
export * from './errors';
export * from './clusters';
export * from './upgrade-pin';
export * from './ip-allowlist';
export * from './federation';
export * from './kubernetes';
export * from './audit-export';
export * from './operations';
export * from './snapshots';
export * from './tokens';
export * from './admin';
export * from './billing';
export * from './console';
export * from './system';
export * from './openapi';

/** Every route of the API, by id. */
export const ROUTES = {
  ...CLUSTER_ROUTES, ...FEDERATION_ROUTES, ...KUBERNETES_ROUTES, ...AUDIT_EXPORT_ROUTES, ...OPERATION_ROUTES, ...SNAPSHOT_ROUTES, ...TOKEN_ROUTES, ...ADMIN_ROUTES, ...BILLING_ROUTES, ...CONSOLE_ROUTES, ...SYSTEM_ROUTES,
};
export type RouteId = keyof typeof ROUTES;

import { z } from 'zod';
import { OperationKind } from './model';

/**
 * What an operation of each kind carries in its `params` (JSON on its row), in
 * one place: the writers put these shapes there, and a flow reads them only
 * through `parseOperationParams`, so a row that does not hold its kind's shape
 * fails its operation with a clear error instead of a flow reading `undefined`.
 * Fields a flow does not read may be there too (audit details): kept.
 */
const uuid = z.string().uuid();
const any = z.object({}).passthrough();
/** A cluster's public endpoint setting as an update-endpoint records it (before and after the request). */
const endpointSetting = z.object({ publicEndpoint: z.boolean(), ipAllowlist: z.array(z.object({ cidr: z.string(), description: z.string() })) });

export const OPERATION_PARAMS = {
  [OperationKind.Create]: any,
  [OperationKind.Delete]: z.object({ previousState: z.string().optional() }).passthrough(),
  [OperationKind.CreateToken]: any,
  [OperationKind.RevokeToken]: z.object({ accessorId: z.string().min(1), reason: z.string().optional() }).passthrough(),
  [OperationKind.Snapshot]: z.object({ snapshotId: uuid }).passthrough(),
  [OperationKind.Restore]: z.object({ snapshotId: uuid, preRestoreSnapshotId: uuid.optional() }).passthrough(),
  [OperationKind.DeleteSnapshot]: z.object({ snapshotId: uuid }).passthrough(),
  [OperationKind.Scale]: z.object({ toTier: z.string().min(1), toCount: z.number().int().positive() }).passthrough(),
  [OperationKind.Repair]: any,
  [OperationKind.RotateGossipKey]: any,
  [OperationKind.RotateCertificates]: any,
  [OperationKind.RotateManagementToken]: any,
  [OperationKind.RotateCa]: any,
  [OperationKind.Upgrade]: z.object({ toVersion: z.string().min(1), preUpgradeSnapshotId: uuid }).passthrough(),
  // What was asked (the audit's before and after); the flow applies the cluster row's setting as it is when it runs, the latest asked.
  [OperationKind.UpdateEndpoint]: z.object({ from: endpointSetting, to: endpointSetting }).passthrough(),
} satisfies Record<OperationKind, z.ZodTypeAny>;

export type OperationParams<K extends OperationKind> = z.infer<(typeof OPERATION_PARAMS)[K]>;

/** The params of an operation of this kind, checked; throws OperationParamsError naming what is wrong. */
export function parseOperationParams<K extends OperationKind>(kind: K, params: unknown): OperationParams<K> {
  const schema = OPERATION_PARAMS[kind] as z.ZodTypeAny | undefined;
  if (!schema) throw new OperationParamsError(`no params shape for operation kind ${kind}`);
  const parsed = schema.safeParse(params ?? {});
  if (!parsed.success) {
    throw new OperationParamsError(`the ${kind} operation's params are not its kind's: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(params)'}: ${i.message}`).join('; ')}`);
  }
  return parsed.data as OperationParams<K>;
}

export class OperationParamsError extends Error {}

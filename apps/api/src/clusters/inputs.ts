import { z } from 'zod';
import { body } from '../validation/input';

/**
 * The shapes of the cluster routes' bodies. Required fields are nullish here: the create
 * command (create-cluster.command.ts) says which are missing and checks the values against the
 * catalog (names, regions, tiers, versions) with messages that name the allowed values.
 */
const text = (field: string) => z.string({ error: `${field} must be a string` }).max(1024, `${field} is at most 1024 characters`).nullish();
const object = (field: string) => z.record(z.string(), z.unknown(), { error: `${field} must be an object` });

const SNAPSHOT_POLICY = object('snapshotPolicy').optional();
const UPGRADE_POLICY = object('upgradePolicy').optional();

export const CREATE_CLUSTER_BODY = body({
  name: text('name'),
  subscriptionId: text('subscriptionId'),
  resourceGroup: text('resourceGroup'),
  region: text('region'),
  tier: text('tier'),
  datacenter: text('datacenter').optional(),
  consulVersion: text('consulVersion').optional(),
  publicEndpoint: z.boolean({ error: 'publicEndpoint must be true or false' }).optional(),
  vnetCidr: text('vnetCidr').optional(),
  snapshotPolicy: SNAPSHOT_POLICY,
  upgradePolicy: UPGRADE_POLICY,
});

export const UPDATE_CLUSTER_BODY = body({
  snapshotPolicy: SNAPSHOT_POLICY,
  upgradePolicy: UPGRADE_POLICY,
  tier: text('tier').optional(),
});

/**
 * What an operation leaves behind when it ran once, for the tests that kill workers under it:
 * the audit event its success records exactly once, and the steps its flow runs, in order.
 */

/** The audit action each kind records exactly once when it succeeds. */
export const SUCCESS_MARKER: Record<string, string> = {
  create: 'cluster.running',
  snapshot: 'snapshot.created',
  'create-token': 'cluster.token.created',
  'rotate-gossip-key': 'cluster.gossip-key.rotated',
  delete: 'cluster.deleted',
};

/** The steps each kind's flow runs, in order. */
export const STEPS: Record<string, string[]> = {
  create: ['allocate-addresses', 'generate-secrets', 'write-config', 'start-servers', 'wait-for-leader', 'verify-acl', 'apply-public-endpoint', 'record-public-address'],
  snapshot: ['take-snapshot', 'apply-retention'],
  'create-token': ['choose-token-ids', 'create-acl-token'],
  'rotate-gossip-key': ['choose-key', 'rotate-keyring', 'save-key', 'share-key-with-secondaries'],
};

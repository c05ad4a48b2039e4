import { z } from 'zod';
import { instant, nullableInstant } from './fields';
import { CLUSTER_ID } from './operations';
import { ROLE, route } from './route';

/**
 * The audit export: every audit event of a cluster, as JSON lines, into hourly append blobs of a
 * container the customer named (docs/audit-export.md). The rules of a container URL live here once:
 * the API refuses with them (422), the console and the CLI check with them before sending.
 */

/** Where an event goes: its cluster, then the UTC hour of its time. */
export const AUDIT_BLOB_PATTERN = '<clusterId>/y=<yyyy>/m=<mm>/d=<dd>/h=<hh>.jsonl';

const two = (n: number) => String(n).padStart(2, '0');

/** The blob of the UTC hour `at` falls in, e.g. `<clusterId>/y=2026/m=12/d=07/h=11.jsonl`. */
export function auditBlobName(clusterId: string, at: Date): string {
  return `${clusterId}/y=${at.getUTCFullYear()}/m=${two(at.getUTCMonth() + 1)}/d=${two(at.getUTCDate())}/h=${two(at.getUTCHours())}.jsonl`;
}

/** The blob a PUT writes to check access before it saves anything. */
export const auditProbeBlobName = (clusterId: string) => `${clusterId}/probe.jsonl`;

// Container names: 3-63 lowercase letters, digits and single hyphens, starting and ending with a
// letter or digit; account names 3-24 lowercase letters and digits.
// https://learn.microsoft.com/rest/api/storageservices/naming-and-referencing-containers--blobs--and-metadata
const CONTAINER_NAME = /^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$/;
const ACCOUNT_NAME = /^[a-z0-9]{3,24}$/;

/** What the PUT's container URL is checked against: the blob endpoints this control plane may connect to. */
export interface ContainerUrlRules {
  /** DNS suffixes of blob endpoints: `https://<account>.<suffix>/<container>` (AUDIT_EXPORT_BLOB_SUFFIXES). */
  blobSuffixes: readonly string[];
  /** Local development: Azurite's `http://127.0.0.1:<port>/<account>` (AUDIT_EXPORT_DEV_ENDPOINT). */
  devEndpoint?: string;
  now: Date;
}

export interface CheckedContainerUrl {
  /** The container's URL without the query: what is kept in the clear and shown. */
  containerUrl: string;
  /** The SAS's expiry (se) when the URL says it (a stored access policy may hold it instead). */
  sasExpiresAt: Date | null;
}

export type ContainerUrlCheck = ({ ok: true } & CheckedContainerUrl) | { ok: false; code: string; message: string };

const refuse = (code: string, message: string): ContainerUrlCheck => ({ ok: false, code, message });

/** The container part of the URL: one path segment after the endpoint. */
function containerOf(u: URL, rules: ContainerUrlRules): { base: string; container: string } | string {
  const shape = `https://<account>.${rules.blobSuffixes[0] ?? 'blob.core.windows.net'}/<container>`;
  if (u.username || u.password || u.hash) return `the container URL must be ${shape}, without a user, password or fragment`;
  const dev = rules.devEndpoint ? new URL(rules.devEndpoint) : undefined;
  if (dev && u.origin === dev.origin && u.pathname.startsWith(`${dev.pathname}/`)) {
    return { base: `${dev.origin}${dev.pathname}`, container: u.pathname.slice(dev.pathname.length + 1) };
  }
  if (u.protocol !== 'https:') return `the container URL must be https: ${shape}`;
  if (u.port) return `the container URL must not name a port: ${shape}`;
  // Only names of the storage service's own shape are connected to: never an address or any other
  // host a caller could point the control plane at (SSRF).
  const suffix = rules.blobSuffixes.find((s) => u.hostname.endsWith(`.${s}`));
  const account = suffix ? u.hostname.slice(0, -(suffix.length + 1)) : '';
  if (!suffix || !ACCOUNT_NAME.test(account)) {
    return `the container URL must be a blob endpoint, ${shape} (account: 3-24 lowercase letters and digits), not ${u.hostname}`;
  }
  return { base: u.origin, container: u.pathname.slice(1) };
}

/**
 * Checks a container URL: the endpoint's shape, the container's name, and, with a SAS, what the
 * SAS must allow. Permissions per Azure's service SAS document
 * (https://learn.microsoft.com/rest/api/storageservices/create-service-sas#permissions-for-a-directory-container-or-blob):
 * Read (r) reads an hour blob's tail back after an interrupted append, Create (c) or Write (w)
 * makes an append blob, Add (a) or Write (w) appends a block. The SAS must be a container SAS
 * (sr=c) or an account SAS for blob objects (ss has b, srt has o,
 * https://learn.microsoft.com/rest/api/storageservices/create-account-sas): a blob SAS reaches one blob.
 */
export function checkContainerUrl(raw: string, managedIdentity: boolean, rules: ContainerUrlRules): ContainerUrlCheck {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return refuse('invalid_container_url', 'containerUrl must be a URL: https://<account>.blob.core.windows.net/<container>?<SAS>');
  }
  const where = containerOf(u, rules);
  if (typeof where === 'string') return refuse('invalid_container_url', where);
  if (!CONTAINER_NAME.test(where.container)) {
    return refuse('invalid_container_url', `the URL must name one container (3-63 lowercase letters, digits and single hyphens) and nothing after it, not '${where.container}'`);
  }
  const containerUrl = `${where.base}/${where.container}`;
  const q = u.searchParams;
  if (managedIdentity) {
    if (u.search) return refuse('unexpected_sas', 'with managedIdentity, send the container URL without a SAS (the control plane\'s identity writes; assign it Storage Blob Data Contributor on the container)');
    return { ok: true, containerUrl, sasExpiresAt: null };
  }
  if (!q.get('sig')) return refuse('sas_missing', 'the container URL must carry a SAS (the query with sig=...), or send managedIdentity: true for the control plane\'s identity');
  const sr = q.get('sr');
  const accountSas = !sr && q.get('ss') !== null;
  if (accountSas) {
    if (!q.get('ss')?.includes('b') || !q.get('srt')?.includes('o')) {
      return refuse('sas_wrong_scope', 'an account SAS must allow the blob service (ss includes b) and objects (srt includes o); or make a container SAS (sr=c)');
    }
  } else if (sr !== 'c') {
    return refuse('sas_wrong_scope', `the SAS must be for the container (sr=c), not ${sr ? `sr=${sr}` : 'without sr'}: the export writes a blob per hour`);
  }
  const storedPolicy = q.get('si') !== null;
  const sp = q.get('sp');
  if (sp === null) {
    if (!storedPolicy) return refuse('sas_permissions', 'the SAS has no permissions (sp): it needs read, add and create (sp=rac), or read and write (sp=rw)');
  } else {
    const missing = [
      sp.includes('r') ? '' : 'read (r), to read an hour blob\'s tail back after an interrupted append',
      sp.includes('a') || sp.includes('w') ? '' : 'add (a), to append to an hour blob',
      sp.includes('c') || sp.includes('w') ? '' : 'create (c), to start an hour blob',
    ].filter(Boolean);
    if (missing.length) return refuse('sas_permissions', `the SAS (sp=${sp}) lacks ${missing.join('; ')}: make one with sp=rac (or rw)`);
  }
  const se = q.get('se');
  let sasExpiresAt: Date | null = null;
  if (se === null) {
    if (!storedPolicy) return refuse('sas_expiry', 'the SAS has no expiry (se); make one that expires later than now');
  } else {
    sasExpiresAt = new Date(se);
    if (Number.isNaN(sasExpiresAt.getTime())) return refuse('sas_expiry', `the SAS's expiry se=${se} is not a time (ISO 8601, UTC)`);
    if (sasExpiresAt.getTime() <= rules.now.getTime()) return refuse('sas_expired', `the SAS expired at ${sasExpiresAt.toISOString()}; make a new one`);
  }
  return { ok: true, containerUrl, sasExpiresAt };
}

export const AUDIT_EXPORT_BODY = z.strictObject({
  containerUrl: z.string().min(1).max(4096).meta({
    description: 'The container: `https://<account>.blob.core.windows.net/<container>?<SAS>` with a container SAS (sr=c) allowing read, add and create (sp=rac) '
      + 'or read and write (sp=rw), or without a SAS when managedIdentity is true. Checked by writing `<clusterId>/probe.jsonl` before anything is saved',
  }),
  managedIdentity: z.boolean().optional().meta({
    description: 'true: the control plane\'s own Azure identity writes (assign it Storage Blob Data Contributor on the container); the URL then has no SAS',
  }),
}).meta({ id: 'AuditExportRequest' });
export type AuditExportRequest = z.output<typeof AUDIT_EXPORT_BODY>;

export const AUDIT_EXPORT_ERROR = z.strictObject({
  code: z.string().meta({ description: 'e.g. sas_expired, storage_forbidden, container_not_found, blob_changed' }),
  message: z.string().meta({ description: 'What failed and what to fix; never holds the SAS' }),
  at: instant,
});

export const AUDIT_EXPORT = z.strictObject({
  enabled: z.boolean(),
  auth: z.enum(['sas', 'managed-identity']).nullable(),
  containerUrl: z.string().nullable().meta({ description: 'The container, without the SAS (never shown back)' }),
  sasExpiresAt: nullableInstant.meta({ description: 'When the SAS expires, if its URL said so' }),
  blobNames: z.string().meta({ description: `Where events go: ${AUDIT_BLOB_PATTERN} (the UTC hour of each event)` }),
  configuredAt: nullableInstant,
  configuredBy: z.string().nullable(),
  status: z.strictObject({
    state: z.enum(['off', 'up-to-date', 'exporting', 'retrying']).meta({ description: 'retrying: the last attempt failed (lastError) and another comes at nextAttemptAt' }),
    lastExportedEvent: z.strictObject({ id: z.string(), seq: z.number().int(), time: instant }).nullable(),
    lastExportedBlob: z.string().nullable().meta({ description: 'The hour blob the last append went to' }),
    lastExportedAt: nullableInstant.meta({ description: 'When the last append was committed' }),
    lag: z.strictObject({
      events: z.number().int().meta({ description: 'Events of the cluster not yet exported' }),
      oldestAt: nullableInstant.meta({ description: 'The time of the oldest of them' }),
      seconds: z.number().int().meta({ description: 'How long the oldest has waited (0 when none)' }),
    }),
    lastError: AUDIT_EXPORT_ERROR.nullable().meta({ description: 'The last failure, kept after a later success for reference' }),
    attempts: z.number().int().meta({ description: 'Failed attempts since the last one that succeeded' }),
    nextAttemptAt: nullableInstant,
  }),
}).meta({ id: 'AuditExport' });
export type AuditExportView = z.output<typeof AUDIT_EXPORT>;

export const AUDIT_EXPORT_ROUTES = {
  getAuditExport: route({
    id: 'getAuditExport', method: 'GET', path: '/v1/clusters/{id}/audit-export', tag: 'clusters', auth: 'bearer', roles: [ROLE.read, ROLE.write],
    summary: 'The cluster\'s audit export: the container (never the SAS) and how far the export has got (last exported event, lag, last error, retries)',
    params: CLUSTER_ID, answers: { 200: AUDIT_EXPORT },
  }),
  putAuditExport: route({
    id: 'putAuditExport', method: 'PUT', path: '/v1/clusters/{id}/audit-export', tag: 'clusters', auth: 'bearer', roles: [ROLE.write],
    summary: `Exports every audit event of the cluster, each exactly once, as JSON lines into hourly append blobs (${AUDIT_BLOB_PATTERN}) of the container named: `
      + 'a container URL with a SAS, or managedIdentity for the control plane\'s identity. Access is checked by writing a probe blob before anything is saved (422 saying what to fix); '
      + 'a new PUT replaces the container or SAS and the export resumes where it stopped',
    params: CLUSTER_ID, body: AUDIT_EXPORT_BODY, answers: { 200: AUDIT_EXPORT },
  }),
  deleteAuditExport: route({
    id: 'deleteAuditExport', method: 'DELETE', path: '/v1/clusters/{id}/audit-export', tag: 'clusters', auth: 'bearer', roles: [ROLE.write],
    summary: 'Turns the audit export off and forgets the SAS; a later PUT resumes after the last exported event',
    params: CLUSTER_ID, answers: { 200: AUDIT_EXPORT },
  }),
};

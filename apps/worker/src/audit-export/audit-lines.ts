import type { ExportedEvent } from '../../../../libs/core/src';

/**
 * One audit event as one JSON line, the shape docs/audit-export.md documents: id, seq, time,
 * tenant, cluster, operation, actor, action, details, in this order.
 */
export function eventLine(e: ExportedEvent): string {
  return `${JSON.stringify({
    id: e.id,
    seq: Number(e.seq),
    time: e.createdAt.toISOString(),
    tenant: e.tenantId,
    cluster: e.clusterId,
    operation: e.operationId,
    actor: e.actor,
    action: e.action,
    details: e.details ?? {},
  })}\n`;
}

/** The event ids of bytes read back from a blob; null unless they are whole lines of events. */
export function landedIds(bytes: Buffer): string[] | null {
  const text = bytes.toString('utf8');
  if (!text.endsWith('\n')) return null;
  const ids: string[] = [];
  for (const line of text.slice(0, -1).split('\n')) {
    try {
      const id = (JSON.parse(line) as { id?: unknown }).id;
      if (typeof id !== 'string') return null;
      ids.push(id);
    } catch {
      return null;
    }
  }
  return ids;
}

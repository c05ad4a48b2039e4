import { z } from 'zod';
import { ValidationError } from '../../../../libs/core/src';
import { valueAt } from '../validation/input';

/**
 * A managed application notification (POST /resource), as Azure documents it:
 * eventType, applicationId, eventTime, provisioningState; error on failure;
 * plan and billingDetails for marketplace applications. Fields Azure may add
 * later are ignored.
 */

const GUID = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}';
export const APPLICATION_ID = new RegExp(`^/subscriptions/(${GUID})/resourceGroups/([-\\w.()]{0,89}[-\\w()])/providers/Microsoft\\.Solutions/applications/([-\\w.]{1,64})$`, 'i');

const STATES = {
  PUT: ['Accepted', 'Succeeded', 'Failed'],
  PATCH: ['Succeeded', 'Failed'],
  DELETE: ['Deleting', 'Deleted', 'Failed'],
} as const;
export type EventType = keyof typeof STATES;

const text = (max: number) => z.string().min(1).max(max);
const errorShape = z.object({
  code: text(200),
  message: z.string().max(8000),
  details: z.array(z.object({ code: z.string().max(200).optional(), message: z.string().max(8000).optional() })).max(50).optional(),
});

const schema = z.object({
  eventType: z.enum(['PUT', 'PATCH', 'DELETE'], { error: 'must be PUT, PATCH or DELETE' }),
  applicationId: z.string().regex(APPLICATION_ID, 'must be a managed application id: /subscriptions/{guid}/resourceGroups/{name}/providers/Microsoft.Solutions/applications/{name}'),
  eventTime: z.string().max(40).refine((s) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/.test(s) && !Number.isNaN(Date.parse(s)), 'must be an ISO 8601 date-time with a zone, e.g. 2026-12-02T17:30:00.1234567Z'),
  provisioningState: text(40),
  applicationDefinitionId: z.string().max(1000).optional(),
  error: errorShape.optional(),
  plan: z.object({ publisher: text(200), product: text(200), name: text(200), version: text(100) }).optional(),
  billingDetails: z.object({ resourceUsageId: text(200) }).optional(),
});

export interface Notification {
  eventType: EventType;
  /** Lower case: ARM ids are case-insensitive. */
  applicationId: string;
  subscriptionId: string;
  resourceGroup: string;
  applicationName: string;
  eventTime: Date;
  provisioningState: string;
  error?: z.infer<typeof errorShape>;
  plan?: { publisher: string; product: string; name: string; version: string };
  resourceUsageId?: string;
}

/** Parses and checks a notification body; a 400 naming the field otherwise. */
export function parseNotification(raw: unknown): Notification {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ValidationError('invalid_body', 'the notification must be a JSON object { eventType, applicationId, eventTime, provisioningState, ... }');
  const r = schema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = issue.path.map(String).join('.');
    const missing = issue.path.length > 0 && valueAt(raw, issue.path.map(String)) === undefined;
    throw new ValidationError(missing ? `missing_${field.replace(/\./g, '_')}` : `invalid_${field.replace(/\./g, '_')}`, missing ? `${field} is required` : `${field}: ${issue.message}`, { field });
  }
  const n = r.data;
  const allowed: readonly string[] = STATES[n.eventType];
  if (!allowed.includes(n.provisioningState)) {
    throw new ValidationError('invalid_provisioningState', `provisioningState of a ${n.eventType} notification must be one of ${allowed.join(', ')}`, { field: 'provisioningState', allowed });
  }
  const m = APPLICATION_ID.exec(n.applicationId)!;
  return {
    eventType: n.eventType,
    applicationId: n.applicationId.toLowerCase(),
    subscriptionId: m[1].toLowerCase(),
    resourceGroup: m[2],
    applicationName: m[3],
    eventTime: new Date(n.eventTime),
    provisioningState: n.provisioningState,
    error: n.error,
    plan: n.plan,
    resourceUsageId: n.billingDetails?.resourceUsageId,
  };
}

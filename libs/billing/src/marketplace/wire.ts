/**
 * The Azure Marketplace metered billing API as it travels on the wire
 * (https://learn.microsoft.com/partner-center/marketplace/marketplace-metering-service-apis),
 * shared by our client and the test fake so both speak the same documented shapes.
 */

export const METERING_API_VERSION = '2018-08-31';
/** The Entra ID resource (application id) of the marketplace metering service. */
export const METERING_RESOURCE = '20e940b3-4c77-4b0b-9a53-9e16a1b010a7';
export const METERING_SCOPE = `${METERING_RESOURCE}/.default`;
/** The most events one `batchUsageEvent` call may carry. */
export const MAX_BATCH_EVENTS = 25;

/**
 * One usage event as the API takes it. SaaS offers name the resource with `resourceId`
 * (the SaaS subscription id); Azure managed applications with `resourceUri`.
 */
export interface WireUsageEvent {
  resourceId?: string;
  resourceUri?: string;
  quantity: number;
  dimension: string;
  /** UTC; the API keeps one event per resource, dimension and hour of this time. */
  effectiveStartTime: string;
  planId: string;
}

/** The API's error object: top-level body of a 400/409, or `error` of one batch result. */
export interface WireError {
  code?: string;
  message?: string;
  target?: string;
  details?: WireError[];
  /** On a Duplicate: the event that was accepted first, with its `usageEventId`. */
  additionalInfo?: { acceptedMessage?: WireUsageEventResult };
}

/** The answer for one event: the 200 body of `usageEvent`, or one entry of a batch's `result`. */
export interface WireUsageEventResult {
  usageEventId?: string;
  status?: string;
  messageTime?: string;
  resourceId?: string;
  resourceUri?: string;
  quantity?: number;
  dimension?: string;
  effectiveStartTime?: string;
  planId?: string;
  error?: WireError;
}

export interface WireBatchRequest {
  request: WireUsageEvent[];
}

export interface WireBatchResponse {
  count: number;
  result: WireUsageEventResult[];
}

/** One entry of `GET /api/usageEvents`: the usage of one resource, dimension and plan on one day. */
export interface UsageEventSummary {
  usageDate: string;
  usageResourceId: string;
  dimension: string;
  planId: string;
  planName: string;
  offerId: string;
  offerName: string;
  offerType: string;
  azureSubscriptionId: string;
  /** Submitted | Accepted | Rejected | Mismatch | TestHeaders | DryRun */
  reconStatus: string;
  submittedQuantity: number;
  processedQuantity: number;
  submittedCount: number;
}

/** Per-event statuses of a batch answer, as documented. */
export const EVENT_STATUSES = [
  'Accepted',
  'Expired',
  'Duplicate',
  'Error',
  'ResourceNotFound',
  'ResourceNotAuthorized',
  'ResourceNotActive',
  'InvalidDimension',
  'InvalidQuantity',
  'BadArgument',
] as const;
export type EventStatus = (typeof EVENT_STATUSES)[number];

/** The `messageTime` the API puts on events it did not accept. */
export const NO_MESSAGE_TIME = '0001-01-01T00:00:00';

const HAS_ZONE = /(Z|[+-]\d{2}:?\d{2})$/i;

/**
 * Milliseconds since the epoch of an API time. The API's examples mix times with and without
 * a zone ("2018-12-01T08:30:14", "2020-01-12T11:03:28.14Z"); all are UTC. NaN when unreadable.
 */
export function apiTimeMs(value: string): number {
  if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}/.test(value)) return Number.NaN;
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(value);
  return Date.parse(dateOnly || HAS_ZONE.test(value) ? value : `${value}Z`);
}

/** The resource an event is for, whichever field names it. */
export function eventResource(event: { resourceId?: string; resourceUri?: string }): string | undefined {
  return event.resourceUri ?? event.resourceId;
}

/**
 * The identity of an event in the API's eyes: resource (case-insensitive, as Azure resource ids
 * are), dimension and the UTC hour of effectiveStartTime, e.g.
 * `/subscriptions/…/applications/app1|standard_hours|2024-05-01T08:00:00.000Z`.
 */
export function usageKey(resource: string, dimension: string, effectiveStartTime: string | Date): string {
  const ms = effectiveStartTime instanceof Date ? effectiveStartTime.getTime() : apiTimeMs(effectiveStartTime);
  const hour = Number.isNaN(ms) ? 'invalid' : new Date(Math.floor(ms / 3_600_000) * 3_600_000).toISOString();
  return `${resource.toLowerCase()}|${dimension}|${hour}`;
}

import type { TokenCredential } from '@azure/identity';
import { UnavailableError } from '../../../../libs/core/src';

/**
 * Reads a managed application back from Azure Resource Manager
 * (`GET {applicationId}?api-version=2019-07-01`, Microsoft.Solutions), with the
 * control plane's own credential. A notification names the application; only
 * ARM says which managed resource group Azure made for it, what the customer
 * chose (its parameters, the UI's outputs) and, once mainTemplate ran, the
 * customer's tenant (the `tenantId` output, evaluated by ARM).
 */

export const APPLICATIONS_API_VERSION = '2019-07-01';
const TIMEOUT_MS = 10_000;

export interface ManagedApplication {
  id: string;
  location: string;
  managedResourceGroupId: string;
  /** Parameter values by name (ARM's `{ name: { value } }` unwrapped). */
  parameters: Record<string, unknown>;
  /** Output values by name; empty until mainTemplate's deployment finished. */
  outputs: Record<string, unknown>;
  provisioningState: string | null;
}

export interface ManagedApplications {
  /** null when ARM does not know it (404). */
  get(applicationId: string): Promise<ManagedApplication | null>;
}

export class ArmManagedApplications implements ManagedApplications {
  private readonly endpoint: string;
  private readonly scope: string;
  private readonly credential: TokenCredential;

  constructor(opts: { endpoint: string; credential: TokenCredential }) {
    this.credential = opts.credential;
    this.endpoint = opts.endpoint.replace(/\/+$/, '');
    this.scope = `${new URL(opts.endpoint).origin}/.default`;
  }

  async get(applicationId: string): Promise<ManagedApplication | null> {
    let res: Response;
    try {
      const token = await this.credential.getToken(this.scope);
      if (!token) throw new Error('no token');
      res = await fetch(`${this.endpoint}${applicationId}?api-version=${APPLICATIONS_API_VERSION}`, {
        headers: { authorization: `Bearer ${token.token}`, accept: 'application/json' },
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (e) {
      throw unavailable(`could not reach Azure Resource Manager (${(e as Error).name})`);
    }
    if (res.status === 404) return null;
    const body = (await res.json().catch(() => null)) as ArmApplication | null;
    if (!res.ok || !body) {
      // ARM's error code and message, never the token.
      throw unavailable(`Azure Resource Manager answered ${res.status}${body?.error?.code ? ` ${body.error.code}` : ''}`);
    }
    const p = body.properties ?? {};
    if (typeof p.managedResourceGroupId !== 'string' || typeof body.location !== 'string') throw unavailable('Azure Resource Manager answered an application without a managed resource group');
    return {
      id: body.id ?? applicationId,
      location: body.location.toLowerCase().replace(/\s+/g, ''),
      managedResourceGroupId: p.managedResourceGroupId,
      parameters: unwrap(p.parameters),
      outputs: unwrap(p.outputs),
      provisioningState: p.provisioningState ?? null,
    };
  }
}

interface ArmApplication {
  id?: string;
  location?: string;
  properties?: { managedResourceGroupId?: string; parameters?: unknown; outputs?: unknown; provisioningState?: string };
  error?: { code?: string; message?: string };
}

function unwrap(v: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!v || typeof v !== 'object') return out;
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = x && typeof x === 'object' && 'value' in x ? (x as { value: unknown }).value : x;
  return out;
}

function unavailable(message: string): UnavailableError {
  // Azure retries a notification answered 5xx for hours: nothing is lost.
  return new UnavailableError('arm_unavailable', `${message}; the notification was not processed, send it again`);
}

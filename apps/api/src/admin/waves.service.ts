import { Injectable } from '@nestjs/common';
import { Inject } from '@nestjs/common';
import {
  FleetRepository, ClusterState, NotFoundError, UnprocessableError, ValidationError, WAVE_ACTIONS, WaveRepository,
  type Config, type WaveWithItems, isUuid
} from '../../../../libs/core/src';
import type { Principal } from '../auth/principal';
import { CONFIG } from '../tokens';

const SELECTOR_KEYS = ['state', 'version', 'region', 'health', 'clusterIds'];

export function waveView(w: WaveWithItems) {
  const count = (s: string) => w.items.filter((i) => i.state === s).length;
  return {
    id: w.id,
    action: w.action,
    params: w.params,
    selector: w.selector,
    canaries: w.canaries,
    maxInFlight: w.maxInFlight,
    maxFailures: w.maxFailures,
    state: w.state,
    stateReason: w.stateReason,
    total: w.items.length,
    pending: count('Pending'),
    running: count('Running'),
    succeeded: count('Succeeded'),
    failed: count('Failed'),
    skipped: count('Skipped'),
    clusters: w.items.map((i) => ({
      clusterId: i.clusterId, canary: i.canary, state: i.state, operationId: i.operationId,
      startedAt: i.startedAt?.toISOString() ?? null, finishedAt: i.finishedAt?.toISOString() ?? null,
    })),
    createdAt: w.createdAt.toISOString(),
    finishedAt: w.finishedAt?.toISOString() ?? null,
  };
}

function int(body: Record<string, unknown>, field: string, min: number, fallback?: number): number {
  const v = body[field] ?? fallback;
  if (!Number.isInteger(v) || (v as number) < min) throw new ValidationError(`invalid_${field}`, `${field} must be a whole number of at least ${min}`, { field });
  return v as number;
}

/** Maintenance waves: validated here, advanced by the worker's wave driver. */
@Injectable()
export class WavesService {
  constructor(@Inject(CONFIG) private readonly config: Config, private readonly clusters: FleetRepository, private readonly waves: WaveRepository) {}

  async start(caller: Principal, raw: unknown) {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ValidationError('invalid_body', 'the request body must be a JSON object');
    const body = raw as Record<string, unknown>;
    const action = body.action;
    if (typeof action !== 'string' || !(WAVE_ACTIONS as readonly string[]).includes(action)) {
      throw new ValidationError('invalid_action', `action must be one of ${WAVE_ACTIONS.join(', ')}`, { field: 'action', allowed: WAVE_ACTIONS });
    }
    const selector = (body.selector ?? {}) as Record<string, unknown>;
    if (typeof selector !== 'object' || Array.isArray(selector) || Object.keys(selector).some((k) => !SELECTOR_KEYS.includes(k))) {
      throw new ValidationError('invalid_selector', `selector is an object with any of ${SELECTOR_KEYS.join(', ')}`, { field: 'selector' });
    }
    const params = (body.params ?? {}) as Record<string, unknown>;
    if (action === 'upgrade' && !this.config.versions.some((v) => v.version === params.consulVersion)) {
      throw new ValidationError('invalid_params', 'an upgrade wave needs params.consulVersion from GET /v1/versions', { field: 'params.consulVersion' });
    }
    const canaries = int(body, 'canaries', 0, 1);
    const maxInFlight = int(body, 'maxInFlight', 1, 1);
    const maxFailures = int(body, 'maxFailures', 0, 0);
    const str = (k: string) => (typeof selector[k] === 'string' ? (selector[k] as string) : undefined);
    let fleet = await this.clusters.listFleet({ state: ClusterState.Running, consulVersion: str('version'), region: str('region'), health: str('health') }, 10_000);
    if (Array.isArray(selector.clusterIds)) {
      const ids = new Set(selector.clusterIds as string[]);
      fleet = fleet.filter((c) => ids.has(c.id));
    }
    if (action === 'upgrade') fleet = fleet.filter((c) => c.consulVersion !== params.consulVersion);
    if (fleet.length === 0) throw new UnprocessableError('empty_selection', 'the selector matches no Running cluster');
    const wave = await this.waves.create({
      action, params, selector, canaries: Math.min(canaries, fleet.length), maxInFlight, maxFailures, createdBy: caller.userId,
      clusterIds: fleet.map((c) => c.id),
    });
    return waveView(wave);
  }

  async get(id: string) {
    const wave = isUuid(id) ? await this.waves.get(id) : null;
    if (!wave) throw new NotFoundError('wave_not_found', `no wave ${id}`);
    return waveView(wave);
  }
}

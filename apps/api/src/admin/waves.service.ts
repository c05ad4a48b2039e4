import { Injectable } from '@nestjs/common';
import { Inject } from '@nestjs/common';
import {
  FleetRepository, ClusterState, NotFoundError, UnprocessableError, WaveRepository,
  type Config, type WaveWithItems, isUuid, waveSkipReason
} from '../../../../libs/core/src';
import type { WaveCommand, WaveView } from '../../../../libs/contracts/src';
import type { Principal } from '../auth/principal';
import { CONFIG } from '../tokens';


export function waveView(w: WaveWithItems): WaveView {
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
      clusterId: i.clusterId, canary: i.canary, state: i.state, reason: i.reason, operationId: i.operationId,
      startedAt: i.startedAt?.toISOString() ?? null, finishedAt: i.finishedAt?.toISOString() ?? null,
    })),
    createdAt: w.createdAt.toISOString(),
    finishedAt: w.finishedAt?.toISOString() ?? null,
  };
}

/** Maintenance waves: validated here, advanced by the worker's wave driver. */
@Injectable()
export class WavesService {
  constructor(@Inject(CONFIG) private readonly config: Config, private readonly clusters: FleetRepository, private readonly waves: WaveRepository) {}

  async start(caller: Principal, cmd: WaveCommand): Promise<WaveView> {
    const { action, selector, params, canaries, maxInFlight, maxFailures } = cmd;
    let fleet = await this.clusters.listFleet({ state: ClusterState.Running, consulVersion: selector.version, region: selector.region, health: selector.health }, 10_000);
    if (selector.clusterIds) {
      const ids = new Set(selector.clusterIds);
      fleet = fleet.filter((c) => ids.has(c.id));
    }
    if (action === 'upgrade') {
      fleet = fleet.filter((c) => c.consulVersion !== params.consulVersion);
      // Clusters whose pin excludes the version go last: the canaries are clusters the wave does upgrade.
      // The pinned stay in the wave and are skipped at their turn, with the reason (their pin is read again then).
      const inside = fleet.filter((c) => waveSkipReason(c, action, params) === null);
      fleet = [...inside, ...fleet.filter((c) => !inside.includes(c))];
    }
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

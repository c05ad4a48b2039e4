import { randomUUID } from 'node:crypto';
import type { Db } from './prisma';
import type { Wave, WaveItem } from '../generated/prisma/client';

export type WaveWithItems = Wave & { items: WaveItem[] };

export interface NewWave {
  action: string;
  params: Record<string, unknown>;
  selector: Record<string, unknown>;
  canaries: number;
  maxInFlight: number;
  maxFailures: number;
  createdBy: string;
  clusterIds: string[];
}

/** Maintenance waves and their per-cluster items. */
export class WaveRepository {
  constructor(private readonly db: Db) {}

  async create(w: NewWave): Promise<WaveWithItems> {
    const id = randomUUID();
    await this.db.$transaction([
      this.db.wave.create({
        data: {
          id, action: w.action, params: w.params as object, selector: w.selector as object, canaries: w.canaries,
          maxInFlight: w.maxInFlight, maxFailures: w.maxFailures, state: 'Running', createdBy: w.createdBy,
        },
      }),
      this.db.waveItem.createMany({
        data: w.clusterIds.map((clusterId, position) => ({ waveId: id, position, clusterId, canary: position < w.canaries, state: 'Pending' })),
      }),
    ]);
    return (await this.get(id))!;
  }

  get(id: string): Promise<WaveWithItems | null> {
    return this.db.wave.findUnique({ where: { id }, include: { items: { orderBy: { position: 'asc' } } } });
  }

  listRunning(): Promise<WaveWithItems[]> {
    return this.db.wave.findMany({ where: { state: 'Running' }, include: { items: { orderBy: { position: 'asc' } } } });
  }

  /** Marks an item started with its operation, only if still Pending (two drivers never start it twice). */
  async start(waveId: string, position: number, operationId: string): Promise<boolean> {
    const n = await this.db.waveItem.updateMany({ where: { waveId, position, state: 'Pending' }, data: { state: 'Running', operationId, startedAt: new Date() } });
    return n.count === 1;
  }

  async finishItem(waveId: string, position: number, state: 'Succeeded' | 'Failed' | 'Skipped'): Promise<void> {
    await this.db.waveItem.updateMany({ where: { waveId, position, state: { in: ['Pending', 'Running'] } }, data: { state, finishedAt: new Date() } });
  }

  /** finishItem for several items of a wave in one statement. */
  async finishItems(waveId: string, positions: number[], state: 'Succeeded' | 'Failed' | 'Skipped'): Promise<void> {
    if (positions.length === 0) return;
    await this.db.waveItem.updateMany({ where: { waveId, position: { in: positions }, state: { in: ['Pending', 'Running'] } }, data: { state, finishedAt: new Date() } });
  }

  async finish(id: string, state: 'Succeeded' | 'Halted', reason: string | null): Promise<void> {
    await this.db.wave.updateMany({ where: { id, state: 'Running' }, data: { state, stateReason: reason, finishedAt: new Date() } });
  }
}

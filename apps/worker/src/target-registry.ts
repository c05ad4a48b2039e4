import path from 'node:path';
import type { Config } from '../../../libs/core/src';
import { LocalTarget, type Target, type TargetKind } from '../../../libs/provisioner/src';
import { PermanentError } from './flows/flow';

/**
 * Which implementation runs a cluster's servers, by the cluster row's
 * `target` column. Each target is made once, on first use. `azure` joins
 * with its implementation; until then a cluster recorded on it fails
 * permanently, and a worker configured to default to it does not start.
 */
export class TargetRegistry {
  private readonly made = new Map<TargetKind, Target>();
  private readonly factories: Partial<Record<TargetKind, () => Target>>;

  constructor(config: Config, binaryFor: (version: string) => string) {
    this.factories = {
      local: () => new LocalTarget({ clustersDir: path.join(config.LOCAL_DIR, 'clusters'), consulBinary: binaryFor }),
    };
    if (!this.factories[config.defaultTarget]) {
      throw new Error(`CLUSTER_TARGET: the default target '${config.defaultTarget}' is not available in this worker (known: ${Object.keys(this.factories).join(', ')})`);
    }
  }

  get(kind: string): Target {
    const known = kind as TargetKind;
    const cached = this.made.get(known);
    if (cached) return cached;
    const factory = this.factories[known];
    if (!factory) throw new PermanentError('unknown_target', `the cluster's target '${kind}' is not available in this worker`);
    const target = factory();
    this.made.set(known, target);
    return target;
  }

  close(): void {
    for (const t of this.made.values()) t.close();
  }
}

import { Gauge } from 'prom-client';
import type { SecretRepository } from '../../../../libs/core/src';

let counted: SecretRepository | undefined;

/**
 * Cluster secrets still sealed in format 1 (not bound to their row), counted at each scrape of
 * the worker's /metrics. 0 once every row is re-sealed; a format-1 row appearing after that was
 * written by someone other than the control plane (it writes format 2 only): alert on > 0.
 */
export const unboundSecretsGauge = new Gauge({
  name: 'cluster_secrets_unbound',
  help: 'Cluster secrets sealed in format 1 (no binding to their row): refused on read, re-sealed only by an operator (npm run secrets-at-rest -- check lists them). Should be 0',
  async collect() {
    if (!counted) return;
    try {
      this.set(await counted.countUnbound());
    } catch {
      // The database out of reach: the last count stays, and /metrics still answers.
    }
  },
});

/** The repository the gauge counts with (the worker's; the last one started in this process). */
export function countUnboundSecretsWith(secrets: SecretRepository): void {
  counted = secrets;
}

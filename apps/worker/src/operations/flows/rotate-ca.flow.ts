import { X509Certificate } from 'node:crypto';
import { AuditRepository, SecretName, SecretRepository } from '../../../../../libs/core/src';
import {
  generateCertificateAuthority, type CertificateAuthority, type ClusterPki, type ConsulApi, type ServerCertificate,
} from '../../../../../libs/provisioner/src';
import type { ClusterContext } from '../cluster-context';
import { issueServerCertificates } from '../cluster-secrets';
import type { ClusterTarget } from '../cluster-target';
import type { Flow, FlowContext, Step } from './flow';

/** A CA roll under way, sealed (it holds the next CA's key) before anything changes, so a retry carries on with the same CA. */
interface CaRoll {
  done: false;
  operationId: string;
  next: CertificateAuthority;
  /** Server certificates from the next CA, by address. */
  servers: ServerCertificate[];
  /** The CA being retired, and one of its server certificates: at the end no server may accept it any more. */
  oldCaCertPem: string;
  oldProbe: Pick<ServerCertificate, 'certPem' | 'keyPem'>;
}

/** A finished roll: only what tells a retried operation that it is done (no key). */
interface CaRollDone {
  done: true;
  operationId: string;
  caCertPem: string;
}

/**
 * CA rotation with no downtime, a dual-CA roll. Each phase changes the sealed
 * PKI first (and the public CA bundle on the cluster row, which client-config
 * serves), then the servers' files, then reloads the servers one at a time
 * (SIGHUP: no restart, no leader change), followers first and the leader
 * last, the cluster healthy before the next:
 *   1. issue-ca: a new CA and server certificates from it, sealed as the roll;
 *   2. trust-new-ca: every server trusts both CAs (ca_file is the bundle) and
 *      still presents its old certificate; checked by a TLS handshake on the
 *      server's RPC port with a certificate of the new CA;
 *   3. roll-leaves: the new CA signs; each server presents its certificate
 *      from the new CA (checked by the fingerprint it serves); both still trusted;
 *   4. drop-old-ca: only the new CA is trusted; checked by the RPC handshake
 *      refusing a certificate of the old CA.
 * Every check is made before reloading, so a retry reloads only the servers
 * not there yet; a roll cut short (even one whose operation failed for good)
 * is carried on by the next CA rotation.
 */
export class RotateCaFlow implements Flow {
  constructor(
    private readonly target: ClusterTarget,
    private readonly secrets: SecretRepository,
    private readonly audit: AuditRepository,
    private readonly readyTimeoutMs: number,
  ) {}

  steps({ cluster, operation, loaded }: FlowContext): Step[] {
    const id = cluster.id;
    const active = async (): Promise<CaRoll | null> => {
      const roll = await this.readRoll(id);
      return roll && !roll.done ? roll : null;
    };
    return [
      {
        name: 'issue-ca',
        run: async () => {
          const found = await this.readRoll(id);
          if (found && !found.done) return `carrying on the roll of operation ${found.operationId} to CA ${fingerprint(found.next.caCertPem)}`;
          if (found?.done && found.operationId === operation.id) return 'rolled already';
          const { secrets: { pki }, spec } = loaded;
          const next = await generateCertificateAuthority(spec.datacenter);
          const servers = await issueServerCertificates(next, spec.datacenter, spec.servers);
          const old = pki.servers[0];
          if (!old) throw new Error('the cluster PKI holds no server certificate');
          const roll: CaRoll = { done: false, operationId: operation.id, next, servers, oldCaCertPem: pki.caCertPem, oldProbe: { certPem: old.certPem, keyPem: old.keyPem } };
          await this.secrets.replace(id, SecretName.CaRotation, JSON.stringify(roll));
          return `new CA ${fingerprint(next.caCertPem)}, ${servers.length} server certificate(s)`;
        },
      },
      {
        name: 'trust-new-ca',
        run: async () => {
          const roll = await active();
          if (!roll) return 'no CA roll in progress';
          const { pki } = loaded.secrets;
          if (pki.caCertPem !== roll.next.caCertPem && !(pki.trustedCaPems ?? []).includes(roll.next.caCertPem)) {
            await this.replacePki(loaded, { ...pki, trustedCaPems: [roll.next.caCertPem] });
          }
          const probe = roll.servers[0]!;
          return this.rollServers(loaded, 'trusts the new CA', (consul, index) => consul.acceptsClientCertificate(index, probe));
        },
      },
      {
        name: 'roll-leaves',
        run: async () => {
          let roll = await active();
          if (!roll) return 'no CA roll in progress';
          if (loaded.secrets.pki.caCertPem !== roll.next.caCertPem) {
            const { spec } = loaded;
            // A server added by scaling since the roll began gets its certificate from the new CA too.
            const missing = spec.servers.filter((s) => !roll!.servers.some((c) => c.address === s.address));
            if (missing.length) {
              const issued = await issueServerCertificates(roll.next, spec.datacenter, missing);
              roll = { ...roll, servers: [...roll.servers, ...issued] };
              await this.secrets.replace(id, SecretName.CaRotation, JSON.stringify(roll));
            }
            const servers = spec.servers.map((s) => roll!.servers.find((c) => c.address === s.address)!);
            await this.replacePki(loaded, { caCertPem: roll.next.caCertPem, caKeyPem: roll.next.caKeyPem, servers, trustedCaPems: [roll.oldCaCertPem] });
          }
          const { spec, secrets: { pki } } = loaded;
          return this.rollServers(loaded, 'serves its certificate from the new CA', async (consul, index) => {
            const address = spec.servers.find((s) => s.index === index)!.address;
            const want = new X509Certificate(pki.servers.find((c) => c.address === address)!.certPem).fingerprint256;
            return (await consul.servedCertificateFingerprint(index)) === want;
          });
        },
      },
      {
        name: 'drop-old-ca',
        run: async () => {
          const roll = await active();
          if (!roll) return 'no CA roll in progress';
          const { pki } = loaded.secrets;
          if (pki.caCertPem !== roll.next.caCertPem) throw new Error('the new CA does not sign yet; roll-leaves runs first');
          if (pki.trustedCaPems?.length) await this.replacePki(loaded, { caCertPem: pki.caCertPem, caKeyPem: pki.caKeyPem, servers: pki.servers });
          const detail = await this.rollServers(loaded, 'refuses the old CA', async (consul, index) => !(await consul.acceptsClientCertificate(index, roll.oldProbe)));
          const done: CaRollDone = { done: true, operationId: operation.id, caCertPem: roll.next.caCertPem };
          await this.secrets.replace(id, SecretName.CaRotation, JSON.stringify(done));
          return detail;
        },
      },
      {
        name: 'verify-cluster',
        run: async () => {
          const r = await loaded.consul.waitForHealthy({ timeoutMs: this.readyTimeoutMs });
          return `leader ${r.leader}, ${r.voters} voters`;
        },
      },
    ];
  }

  /** The cluster's PKI becomes `pki` (sealed, its public part on the row); the context reads it again. */
  private async replacePki(loaded: ClusterContext, pki: ClusterPki): Promise<void> {
    await this.target.secrets.replacePki(loaded.cluster.id, pki);
    await loaded.reload();
  }

  /**
   * Writes every server's files for the stored PKI, then, one server at a
   * time (followers first, the leader last), reloads each for which `check`
   * does not hold yet and waits until it does and the cluster is healthy.
   */
  private async rollServers(loaded: ClusterContext, what: string, check: (consul: ConsulApi, index: number) => Promise<boolean>): Promise<string> {
    const { spec, secrets, consul } = loaded;
    await this.target.writeServerConfig(spec, secrets);
    const leader = await consul.leaderIndex().catch(() => undefined);
    const order = [...spec.servers.map((s) => s.index).filter((i) => i !== leader), ...(leader === undefined ? [] : [leader])];
    const reloaded: number[] = [];
    for (const index of order) {
      if (await this.target.reloadServerUntil(spec, index, what, () => check(consul, index))) {
        reloaded.push(index);
        await consul.waitForHealthy({ timeoutMs: this.readyTimeoutMs });
      }
    }
    return reloaded.length ? `reloaded in order ${reloaded.join(', ')} (leader last); every server ${what}` : `every server ${what} already`;
  }

  private async readRoll(clusterId: string): Promise<CaRoll | CaRollDone | null> {
    const raw = await this.secrets.get(clusterId, SecretName.CaRotation);
    return raw === null ? null : (JSON.parse(raw) as CaRoll | CaRollDone);
  }

  async succeeded({ cluster, operation }: FlowContext) {
    const roll = await this.readRoll(cluster.id);
    const caFingerprint = roll?.done ? fingerprint(roll.caCertPem) : undefined;
    await this.audit.record({ tenantId: cluster.tenantId, clusterId: cluster.id, operationId: operation.id, actor: operation.requestedBy, action: 'cluster.ca.rotated', details: { caFingerprint } });
  }

  /** The roll stays sealed: the next CA rotation carries it on. */
  async failed({ cluster, operation }: FlowContext, reason: string) {
    await this.audit.record({ tenantId: cluster.tenantId, clusterId: cluster.id, operationId: operation.id, actor: 'system', action: 'cluster.ca.rotation-failed', details: { reason } });
  }
}

function fingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256.replace(/:/g, '').slice(0, 16).toLowerCase();
}

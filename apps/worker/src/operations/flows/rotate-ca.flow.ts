import { X509Certificate } from 'node:crypto';
import { AuditRepository, ClusterRepository, SecretName, SecretRepository } from '../../../../../libs/core/src';
import {
  generateCertificateAuthority, type CertificateAuthority, type ClusterPki, type ConsulApi, type ServerCertificate,
} from '../../../../../libs/provisioner/src';
import type { ClusterContext } from '../cluster-context';
import { issueServerCertificates } from '../cluster-secrets';
import type { ClusterTarget } from '../cluster-target';
import { PermanentError, type Flow, type FlowContext, type Step } from './flow';

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
 *
 * A federation has one CA, its primary's: the roll runs on the primary and
 * each phase covers every live secondary after the primary (their server
 * certificates from the new CA for their own datacenter), so a server of one
 * datacenter presents a certificate the others trust at every moment.
 */
export class RotateCaFlow implements Flow {
  constructor(
    private readonly target: ClusterTarget,
    private readonly clusters: ClusterRepository,
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
          if (cluster.primaryClusterId) {
            throw new PermanentError('rotate_on_primary', `the CA is the federation's: rotate it on the primary (${cluster.primaryClusterId}), which rolls every member`);
          }
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
          const probe = roll.servers[0]!;
          return this.eachMember(loaded, async (m) => {
            const { pki } = m.secrets;
            if (pki.caCertPem !== roll.next.caCertPem && !(pki.trustedCaPems ?? []).includes(roll.next.caCertPem)) {
              await this.replacePki(m, { ...pki, trustedCaPems: [roll.next.caCertPem] });
            }
            return this.rollServers(m, 'trusts the new CA', (consul, index) => consul.acceptsClientCertificate(index, probe));
          });
        },
      },
      {
        name: 'roll-leaves',
        run: async () => {
          const roll = await active();
          if (!roll) return 'no CA roll in progress';
          // Every member of the federation trusts the new CA already: a server presenting a certificate from it is accepted everywhere.
          return this.eachMember(loaded, async (m) => {
            if (m.secrets.pki.caCertPem !== roll.next.caCertPem) await this.replacePki(m, await this.leavesFromNextCa(m, roll, id));
            const { spec, secrets: { pki } } = m;
            return this.rollServers(m, 'serves its certificate from the new CA', async (consul, index) => {
              const address = spec.servers.find((s) => s.index === index)!.address;
              const want = new X509Certificate(pki.servers.find((c) => c.address === address)!.certPem).fingerprint256;
              return (await consul.servedCertificateFingerprint(index)) === want;
            });
          });
        },
      },
      {
        name: 'drop-old-ca',
        run: async () => {
          const roll = await active();
          if (!roll) return 'no CA roll in progress';
          const detail = await this.eachMember(loaded, async (m) => {
            const { pki } = m.secrets;
            if (pki.caCertPem !== roll.next.caCertPem) throw new Error(`the new CA does not sign in ${m.cluster.datacenter} yet; roll-leaves runs first`);
            if (pki.trustedCaPems?.length) await this.replacePki(m, { caCertPem: pki.caCertPem, caKeyPem: pki.caKeyPem, servers: pki.servers });
            return this.rollServers(m, 'refuses the old CA', async (consul, index) => !(await consul.acceptsClientCertificate(index, roll.oldProbe)));
          });
          const done: CaRollDone = { done: true, operationId: operation.id, caCertPem: roll.next.caCertPem };
          await this.secrets.replace(id, SecretName.CaRotation, JSON.stringify(done));
          return detail;
        },
      },
      {
        name: 'verify-cluster',
        run: () => this.eachMember(loaded, async (m) => {
          const r = await m.consul.waitForHealthy({ timeoutMs: this.readyTimeoutMs });
          return `leader ${r.leader}, ${r.voters} voters`;
        }),
      },
    ];
  }

  /**
   * The member's PKI with the new CA signing: its servers' certificates from the roll (the
   * primary's, issued with it, and any server added since) or issued now (a secondary's, for its
   * own datacenter), the old CA still trusted.
   */
  private async leavesFromNextCa(m: ClusterContext, roll: CaRoll, owner: string): Promise<ClusterPki> {
    const { spec } = m;
    let servers: ServerCertificate[];
    if (m.cluster.id === owner) {
      // A server added by scaling since the roll began gets its certificate from the new CA too.
      const missing = spec.servers.filter((s) => !roll.servers.some((c) => c.address === s.address));
      if (missing.length) {
        roll.servers.push(...(await issueServerCertificates(roll.next, spec.datacenter, missing)));
        await this.secrets.replace(owner, SecretName.CaRotation, JSON.stringify(roll));
      }
      servers = spec.servers.map((s) => roll.servers.find((c) => c.address === s.address)!);
    } else {
      servers = await issueServerCertificates(roll.next, spec.datacenter, spec.servers);
    }
    return { caCertPem: roll.next.caCertPem, caKeyPem: roll.next.caKeyPem, servers, trustedCaPems: [roll.oldCaCertPem] };
  }

  /**
   * Runs a phase of the roll on the cluster, then on each of its live secondaries (one CA trust
   * for the federation: a phase ends everywhere before the next begins). Each secondary's
   * context is read now.
   */
  private async eachMember(loaded: ClusterContext, phase: (m: ClusterContext) => Promise<string>): Promise<string> {
    const details = [`${loaded.cluster.datacenter}: ${await phase(loaded)}`];
    for (const row of await this.clusters.liveSecondaries(loaded.cluster.id)) {
      if (row.servers.length < row.serverCount) continue; // not made yet: it takes the primary's PKI when it is
      details.push(`${row.datacenter}: ${await phase(await this.target.open(row))}`);
    }
    return details.length === 1 ? details[0]!.replace(/^[^:]+: /, '') : details.join('; ');
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

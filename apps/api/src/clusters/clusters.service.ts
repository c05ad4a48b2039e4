import { createHash, randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { applySnapshotPolicy, applyUpgradePolicy, type BodyOf, type ClusterView, type CreateClusterCommand, type OperationView, type Rotation, ROUTES } from '../../../../libs/contracts/src';
import { TenantClusterRepository, FederationRepository, type IdempotentResponse, type NewCluster, ClusterState, ConflictError, IdempotencyRepository, NotFoundError, OperationKind, ROLES, SecretName, SecretRepository, TIERS, ValidationError, isUniqueViolation, isUuid, type Config, type Operation, type TierName, type UpgradePolicy } from '../../../../libs/core/src';
import type { Principal } from '../auth/principal';
import { OperationDispatcher } from '../operation.dispatcher';
import { UI_SESSION_GATE } from '../consul-ui/consul-ui.tokens';
import type { UiSessionGate } from '../consul-ui/ui-session-gate';
import { CONFIG } from '../tokens';
import { idempotentRequest, requestHash } from '../idempotent-request';
import { clusterView, operationView } from './views';

/** A created cluster and the operation that creates it (also what an Idempotency-Key replays). */
export interface CreatedCluster {
  cluster: ClusterView;
  operation: OperationView;
}

/** The operation each rotation asks for. */
const ROTATION_KINDS: Readonly<Record<Rotation, OperationKind>> = {
  'gossip-key': OperationKind.RotateGossipKey,
  certificates: OperationKind.RotateCertificates,
  'management-token': OperationKind.RotateManagementToken,
  ca: OperationKind.RotateCa,
};

/** The servers of a tier the contract has checked against the catalog. */
export const serverCountFor = (tier: string): number => TIERS[tier as TierName].servers;

@Injectable()
export class ClustersService {
  constructor(
    @Inject(CONFIG) private readonly config: Config,
    private readonly dispatcher: OperationDispatcher,
    private readonly clusters: TenantClusterRepository,
    private readonly federations: FederationRepository,
    private readonly secrets: SecretRepository,
    private readonly idempotency: IdempotencyRepository,
    @Inject(UI_SESSION_GATE) private readonly uiSessions: UiSessionGate,
  ) {}

  async create(caller: Principal, cmd: CreateClusterCommand, idempotencyKey: string | undefined): Promise<CreatedCluster> {
    if (this.config.defaultTarget === 'azure') {
      // An Azure cluster lives in a managed resource group that Azure makes for the customer's managed
      // application and that only the control plane may change (the offer's authorization and the
      // customer's deny assignment). The control plane has no right to make a resource group in a
      // customer's subscription, and a group the customer made is one the customer can still change:
      // Azure clusters come from the offer alone (POST /resource), as HCS's did.
      throw new ConflictError('create_through_marketplace', 'clusters on Azure are created by buying the managed application (Azure Marketplace offer or service catalog), which makes the managed resource group only this control plane may change; once it is deployed the cluster is listed here and managed through this API', { target: 'azure' });
    }
    // The create's key is bound to its body alone (keys recorded before day-2 requests took keys too).
    const hash = createHash('sha256').update(JSON.stringify(cmd)).digest('hex');
    return idempotentRequest(this.idempotency, caller.tenantId, idempotencyKey, hash, ROUTES.createCluster.answers[202], () => this.insert(caller, cmd, idempotencyKey, hash));
  }

  private async insert(caller: Principal, cmd: CreateClusterCommand, idempotencyKey: string | undefined, requestHash: string): Promise<CreatedCluster> {
    let created;
    const input: NewCluster = {
      tenantId: caller.tenantId, createdBy: caller.userId, serverCount: serverCountFor(cmd.tier),
      name: cmd.name, subscriptionId: cmd.subscriptionId, resourceGroup: cmd.resourceGroup, region: cmd.region, tier: cmd.tier,
      datacenter: cmd.datacenter, consulVersion: cmd.consulVersion, publicEndpoint: cmd.publicEndpoint, ipAllowlist: cmd.ipAllowlist, deletionProtection: cmd.deletionProtection,
      snapshotIntervalHours: cmd.snapshotPolicy.intervalHours, snapshotRetention: cmd.snapshotPolicy.retention,
      upgradePolicy: cmd.upgradePolicy, target: this.config.defaultTarget, vnetCidr: cmd.vnetCidr,
    };
    const idem: IdempotentResponse | undefined = idempotencyKey
      ? { key: idempotencyKey, requestHash, statusCode: 202, location: '/v1/operations/:operationId', body: (c, o) => ({ cluster: clusterView(c), operation: operationView(o) }) }
      : undefined;
    try {
      // With a federation token: a secondary of that token's primary, checked and written under the primary's lock.
      created = cmd.federationToken ? await this.federations.createSecondary(input, cmd.federationToken, idem) : await this.clusters.createWithOperation(input, idem);
    } catch (e) {
      if (!isUniqueViolation(e)) throw e;
      // The name was taken meanwhile, or the same Idempotency-Key raced us (idempotentRequest replays that one).
      throw this.nameTaken(cmd.name);
    }
    await this.dispatcher.dispatch(created.operation.id);
    return { cluster: clusterView(created.cluster), operation: operationView(created.operation) };
  }

  async list(caller: Principal) {
    const rows = await this.clusters.listForTenant(caller.tenantId);
    return { clusters: rows.map(clusterView) };
  }

  async get(caller: Principal, id: string) {
    const row = await this.clusters.findViewForTenant(caller.tenantId, id);
    if (!row) throw new NotFoundError('cluster_not_found', `no cluster ${id}`);
    return clusterView(row);
  }

  async delete(caller: Principal, id: string): Promise<OperationView> {
    const cluster = await this.require(caller, id);
    const pending = await this.clusters.findPendingOperation(caller.tenantId, cluster.id, OperationKind.Delete);
    if (pending) return operationView(pending);
    if (cluster.state === ClusterState.Deleted) throw new NotFoundError('cluster_not_found', `cluster ${id} was deleted`);
    // Refused under the cluster's lock, writing nothing: a primary with secondaries; deletion protection (until PATCHed off).
    const op = await this.clusters.requestDelete(cluster, caller.userId, new Date(), { refuseWithSecondaries: true, refuseProtected: true });
    // Its Consul UI sessions end now (the proxy refuses them); the delete operation revokes their tokens first thing.
    await this.uiSessions.revoke({ clusterId: cluster.id }, 'cluster-deleted');
    await this.dispatcher.dispatch(op.id);
    return operationView(op);
  }

  /**
   * PATCH: the snapshot and upgrade policies and deletion protection change at
   * once, together (200); a new tier queues a scale operation (202 with it), and
   * a change of the public endpoint or its allowlist an update-endpoint operation
   * (202 with it, written with the other settings in one transaction), run by
   * the worker like any other change. Everything is validated before anything
   * is written.
   */
  async update(caller: Principal, id: string, change: BodyOf<typeof ROUTES.updateCluster>): Promise<{ cluster: ClusterView; operation?: OperationView }> {
    const cluster = await this.require(caller, id);
    if (cluster.state === ClusterState.Deleting || cluster.state === ClusterState.Deleted) throw new ConflictError('cluster_deleting', `the cluster is ${cluster.state}`);
    const policy = change.snapshotPolicy && applySnapshotPolicy(change.snapshotPolicy, { intervalHours: cluster.snapshotIntervalHours, retention: cluster.snapshotRetention });
    let upgradePolicy: UpgradePolicy | undefined;
    if (change.upgradePolicy) {
      const next = applyUpgradePolicy(change.upgradePolicy, {
        mode: cluster.upgradeMode as UpgradePolicy['mode'], window: cluster.upgradeWindow as UpgradePolicy['window'], pin: cluster.upgradePin as UpgradePolicy['pin'],
      });
      if ('problem' in next) throw new ValidationError('invalid_upgradePolicy_window', next.problem, { field: 'upgradePolicy.window' });
      upgradePolicy = next;
    }
    let toTier: TierName | undefined;
    if (change.tier !== undefined && change.tier !== cluster.tier) {
      if (cluster.billingPlanId !== null) {
        // Its hours are billed under the marketplace plan it was bought with, whose dimension is this tier's:
        // another tier would meter a dimension the plan lacks. The plan changes in Azure (the application's plan), not here.
        throw new ConflictError('tier_is_plan', `this cluster was bought through the Azure Marketplace with plan '${cluster.billingPlanId}', which sets its tier (${cluster.tier}); change the plan of its managed application in Azure instead`, { field: 'tier', planId: cluster.billingPlanId });
      }
      if (cluster.state !== ClusterState.Running) throw new ConflictError('cluster_not_running', `the cluster is ${cluster.state}; it can be scaled once it is Running`);
      toTier = change.tier as TierName;
    }
    const endpoint = change.publicEndpoint !== undefined || change.ipAllowlist !== undefined ? { publicEndpoint: change.publicEndpoint, ipAllowlist: change.ipAllowlist } : undefined;
    let endpointOperation: Operation | null = null;
    if (policy || upgradePolicy || change.deletionProtection !== undefined || endpoint) {
      endpointOperation = await this.clusters.updateSettings(cluster, { snapshotPolicy: policy, upgradePolicy, deletionProtection: change.deletionProtection, endpoint }, caller.userId);
    }
    if (endpointOperation) {
      await this.dispatcher.dispatch(endpointOperation.id);
      return { cluster: clusterView((await this.clusters.findForTenant(caller.tenantId, id))!), operation: operationView(endpointOperation) };
    }
    if (!toTier) return { cluster: clusterView((await this.clusters.findForTenant(caller.tenantId, id))!) };
    const op = await this.clusters.addOperation(cluster, OperationKind.Scale, caller.userId, 'cluster.scale.requested', {
      toTier, toCount: serverCountFor(toTier), requestedFrom: cluster.tier,
    });
    await this.dispatcher.dispatch(op.id);
    return { cluster: clusterView((await this.clusters.findForTenant(caller.tenantId, id))!), operation: operationView(op) };
  }

  /**
   * Manual upgrade to a version of the catalog: a rolling upgrade operation. The upgrade pin binds
   * what the control plane does on its own (automatic upgrades, SRE waves); a customer naming a
   * version is the customer's choice, so it goes ahead across the pin.
   */
  async upgrade(caller: Principal, id: string, version: string): Promise<OperationView> {
    const cluster = await this.require(caller, id);
    if (version === cluster.consulVersion) throw new ConflictError('already_on_version', `the cluster already runs Consul ${version}`);
    this.requireRunning(cluster.state, 'an upgrade');
    const op = await this.clusters.addOperation(cluster, OperationKind.Upgrade, caller.userId, 'cluster.upgrade.requested', {
      toVersion: version, fromVersion: cluster.consulVersion, preUpgradeSnapshotId: randomUUID(),
    });
    await this.dispatcher.dispatch(op.id);
    return operationView(op);
  }

  /** Key rotation: gossip key, server certificates, the management token or the CA, as an operation. */
  async rotate(caller: Principal, id: string, what: Rotation, idempotencyKey?: string): Promise<{ operation: OperationView }> {
    const hash = requestHash(ROUTES.rotateCluster.id, id, { what });
    return idempotentRequest(this.idempotency, caller.tenantId, idempotencyKey, hash, ROUTES.rotateCluster.answers[202], async () => {
      const cluster = await this.require(caller, id);
      this.requireRunning(cluster.state, 'rotation');
      if (what === 'ca' || what === 'gossip-key') this.refuseInFederation(cluster, what);
      const idem = idempotencyKey ? { key: idempotencyKey, requestHash: hash, body: (o: Operation) => ({ operation: operationView(o) }) } : undefined;
      const op = await this.clusters.addOperation(cluster, ROTATION_KINDS[what], caller.userId, `cluster.rotate.requested`, { what }, idem);
      await this.dispatcher.dispatch(op.id);
      return { operation: operationView(op) };
    });
  }

  /**
   * What a Consul client agent needs to join. The gossip key lets its holder join the
   * cluster's gossip pool, so it is in the answer only for Clusters.ReadWrite; Clusters.Read
   * gets the rest (CA certificate, servers, datacenter), which holds no secret.
   */
  async clientConfig(caller: Principal, id: string) {
    const cluster = await this.require(caller, id);
    this.requireRunning(cluster.state, 'client configuration');
    const withKey = caller.roles.has(ROLES.write);
    // The CA bundle is public and kept on the cluster row: the sealed PKI (with the CA's key) is not opened here.
    // During a CA roll it holds both CAs, so a client verifies the servers whichever CA signed their certificates.
    const caPem = cluster.caCertPem;
    const encrypt = withKey ? await this.secrets.get(cluster.id, SecretName.GossipKey) : undefined;
    if (!caPem || (withKey && !encrypt)) throw new ConflictError('cluster_not_ready', 'the cluster has no secrets yet; wait until it is Running');
    // Clients of every datacenter name the federation's primary, as its servers do (Consul forwards ACL and Connect CA calls there).
    const primaryDatacenter = cluster.primaryClusterId ? (await this.clusters.findForTenant(caller.tenantId, cluster.primaryClusterId))?.datacenter ?? cluster.datacenter : cluster.datacenter;
    const retryJoin = cluster.servers.map((s) => s.address);
    const httpsAddress = `https://${retryJoin[0]}:8501`;
    const key = withKey ? { encrypt } : { encryptOmitted: `the gossip key is given only to ${ROLES.write}; ask for the client config with that role to join a client agent` };
    return {
      datacenter: cluster.datacenter,
      caPem,
      ...key,
      retryJoin,
      httpsAddress,
      autoEncrypt: true,
      // The same, ready to write as a Consul client agent's JSON config (save caPem as ca.pem beside it).
      consulConfig: {
        datacenter: cluster.datacenter,
        primary_datacenter: primaryDatacenter,
        server: false,
        ...(withKey ? { encrypt } : {}),
        retry_join: retryJoin,
        ca_file: 'ca.pem',
        verify_outgoing: true,
        verify_server_hostname: true,
        auto_encrypt: { tls: true },
        acl: { enabled: true, default_policy: 'deny', enable_token_persistence: true },
      },
    };
  }

  /** The CA and the gossip key are the federation's, one for all its members: they rotate on the primary, for every member. */
  private refuseInFederation(cluster: { primaryClusterId: string | null }, what: Rotation): void {
    if (cluster.primaryClusterId !== null) {
      // Consul's keyring calls reach every datacenter, and the primary's CA roll covers every member.
      const thing = what === 'ca' ? 'CA' : 'gossip key';
      throw new ConflictError('rotate_on_primary', `the ${thing} is the federation's; rotate it on the primary (${cluster.primaryClusterId}), which rotates every member`, { primaryClusterId: cluster.primaryClusterId, what });
    }
  }

  private nameTaken(name: string) {
    return new ConflictError('cluster_name_taken', `a cluster named '${name}' already exists in this subscription and resource group`, { field: 'name' });
  }

  /** The caller's tenant's cluster, or a 404 (a malformed id too). */
  async require(caller: Principal, id: string) {
    const cluster = isUuid(id) ? await this.clusters.findForTenant(caller.tenantId, id) : null;
    if (!cluster) throw new NotFoundError('cluster_not_found', `no cluster ${id}`);
    return cluster;
  }

  private requireRunning(state: string, what: string): void {
    if (state !== ClusterState.Running) throw new ConflictError('cluster_not_running', `the cluster is ${state}; ${what} is available once it is Running`);
  }
}

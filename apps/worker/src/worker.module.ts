import { SecondarySteps } from './federation/secondary-steps';
import { hostname } from 'node:os';
import { Logger, Module, type DynamicModule } from '@nestjs/common';
import type IORedis from 'ioredis';
import { AuditExportRepository, AuditRepository, CertificateScheduleRepository, azureCredential, ClusterRepository, ConsoleSessionRepository, ConsulUiSessionRepository, IssuedTokenRepository, OperationRepository, SecretBox, SecretRepository, secretBoxOf, SnapshotRepository, SnapshotScheduleRepository, TenantClusterRepository, UpgradeScheduleRepository, UsageRepository, WaveRepository, createDb, createOperationsQueue, createRedis, recommendedVersion, type Config, type Db, type OperationKind, type OperationsQueue } from '../../../libs/core/src';
import { BlobSnapshotStore, ConsulUiTokens } from '../../../libs/provisioner/src';
import { ConsulUiRevoker } from './consul-ui/consul-ui-revoker';
import { ClusterSnapshots } from './operations/cluster-snapshots';
import { ClusterTarget } from './operations/cluster-target';
import { RestoreFlow } from './operations/flows/restore.flow';
import { ScaleFlow } from './operations/flows/scale.flow';
import { UpgradeFlow } from './operations/flows/upgrade.flow';
import { RepairFlow } from './operations/flows/repair.flow';
import { RotateCertificatesFlow, RotateGossipKeyFlow, RotateManagementTokenFlow } from './operations/flows/rotate.flow';
import { RotateCaFlow } from './operations/flows/rotate-ca.flow';
import { CertificateRotationScheduler, certificateRotationPolicy } from './schedules/cert-rotation.scheduler';
import { HealthMonitor } from './health/health.monitor';
import { WaveDriver } from './waves/wave.driver';
import { DeleteSnapshotFlow, SnapshotFlow } from './operations/flows/snapshot.flow';
import { CreateClusterFlow } from './operations/flows/create-cluster.flow';
import { StartGate, startGateCapacity } from './operations/start-gate';
import { CreateTokenFlow } from './operations/flows/create-token.flow';
import { RevokeTokenFlow } from './operations/flows/revoke-token.flow';
import { TokenSweeper } from './schedules/token.sweeper';
import { DeleteClusterFlow } from './operations/flows/delete-cluster.flow';
import { UpdateEndpointFlow } from './operations/flows/update-endpoint.flow';
import type { Flow } from './operations/flows/flow';
import { OperationRunner } from './operations/operation.runner';
import { Reconciler } from './operations/reconciler';
import { SnapshotScheduler } from './schedules/snapshot.scheduler';
import { UpgradeScheduler } from './schedules/upgrade.scheduler';
import { CONFIG, DB, QUEUE, REDIS } from './tokens';
import { WorkerService } from './worker.service';
import { AuditExporter } from './audit-export/audit-exporter';
import { KillSwitch } from './audit-export/kill-switch';
import { countUnboundSecretsWith } from './secrets-at-rest/unbound.gauge';
import { BillingTicker } from './billing/billing.ticker';
import { createUsageExporter } from './billing/billing.exporter';
import { Meter, UsageExportDriver } from '../../../libs/billing/src';

@Module({})
export class WorkerModule {
  static forRoot(config: Config): DynamicModule {
    return {
      module: WorkerModule,
      providers: [
        { provide: CONFIG, useValue: config },
        { provide: DB, useFactory: () => createDb(config.DATABASE_URL, config.DATABASE_POOL_SIZE) },
        { provide: REDIS, useFactory: () => createRedis(config.REDIS_URL, false) },
        { provide: QUEUE, useFactory: (redis: IORedis) => createOperationsQueue(redis, config.QUEUE_PREFIX), inject: [REDIS] },
        { provide: SecretBox, useFactory: () => secretBoxOf(config) },
        { provide: ClusterRepository, useFactory: (db: Db) => new ClusterRepository(db), inject: [DB] },
        { provide: OperationRepository, useFactory: (db: Db) => new OperationRepository(db), inject: [DB] },
        {
          provide: SecretRepository,
          // Start-up step for secrets at rest: re-wrap data keys to the active KEK (idempotent,
          // resumable). Rows of the unbound format 1 are never opened here, only counted: they are
          // refused on read and re-sealed by an operator (see the README's security section).
          useFactory: async (db: Db, box: SecretBox) => {
            const secrets = new SecretRepository(db, box);
            const report = await secrets.maintainAtRest();
            const log = new Logger('SecretsAtRest');
            if (report.rewrapped) log.log(`re-wrapped ${report.rewrapped} data key(s) to KEK ${box.activeKekId}`);
            if (report.unbound) log.error(`${report.unbound} cluster secret(s) sealed in format 1 are refused on read: list them with npm run secrets-at-rest -- check`);
            for (const f of report.failed) log.error(`cluster secret ${f.name} of cluster ${f.clusterId} left as it is: ${f.reason}`);
            countUnboundSecretsWith(secrets);
            return secrets;
          },
          inject: [DB, SecretBox],
        },
        { provide: AuditRepository, useFactory: (db: Db) => new AuditRepository(db), inject: [DB] },
        { provide: IssuedTokenRepository, useFactory: (db: Db, secrets: SecretRepository) => new IssuedTokenRepository(db, secrets), inject: [DB, SecretRepository] },
        {
          provide: SnapshotRepository,
          // Start-up step: snapshots' data keys re-wrapped to the active KEK (blobs untouched).
          useFactory: async (db: Db, box: SecretBox) => {
            const rows = new SnapshotRepository(db);
            const report = await rows.rewrapKeys(box);
            const log = new Logger('SecretsAtRest');
            if (report.rewrapped) log.log(`re-wrapped ${report.rewrapped} snapshot data key(s) to KEK ${box.activeKekId}`);
            for (const f of report.failed) log.error(`snapshot ${f.snapshotId} of cluster ${f.clusterId} left as it is: ${f.reason}`);
            return rows;
          },
          inject: [DB, SecretBox],
        },
        {
          provide: ClusterSnapshots,
          useFactory: async (target: ClusterTarget, rows: SnapshotRepository, box: SecretBox) => {
            const store = new BlobSnapshotStore({ connectionString: config.AZURE_STORAGE_CONNECTION_STRING, container: config.SNAPSHOT_CONTAINER });
            await store.ensureContainer();
            return new ClusterSnapshots(target, rows, store, box);
          },
          inject: [ClusterTarget, SnapshotRepository, SecretBox],
        },
        {
          provide: ClusterTarget,
          useFactory: (c: ClusterRepository, s: SecretRepository) => new ClusterTarget(config, c, s),
          inject: [ClusterRepository, SecretRepository],
        },
        {
          provide: OperationRunner,
          useFactory: (
            ops: OperationRepository, clusters: ClusterRepository, secrets: SecretRepository, audit: AuditRepository, target: ClusterTarget,
            snapshotRows: SnapshotRepository, snapshots: ClusterSnapshots, tokens: IssuedTokenRepository, uiRevoker: ConsulUiRevoker,
          ) => {
            const secondary = new SecondarySteps(target, clusters, config.CLUSTER_READY_TIMEOUT_MS);
            const flows: Record<OperationKind, Flow> = {
              create: new CreateClusterFlow(target, clusters, audit, secondary, config.CLUSTER_READY_TIMEOUT_MS, new StartGate(startGateCapacity(config.LOCAL_CONCURRENT_STARTS), 2 * config.CLUSTER_READY_TIMEOUT_MS)),
              delete: new DeleteClusterFlow(target, clusters, secrets, audit, snapshotRows, snapshots, tokens, uiRevoker, secondary),
              'create-token': new CreateTokenFlow(secrets, tokens, audit, config.TOKEN_COLLECT_WINDOW_MS),
              'revoke-token': new RevokeTokenFlow(secrets, tokens, audit, config.CLUSTER_READY_TIMEOUT_MS),
              snapshot: new SnapshotFlow(snapshots, snapshotRows, audit),
              restore: new RestoreFlow(secrets, snapshots, snapshotRows, clusters, audit, config.CLUSTER_READY_TIMEOUT_MS, tokens, uiRevoker, secondary),
              'delete-snapshot': new DeleteSnapshotFlow(snapshots, audit),
              scale: new ScaleFlow(target, clusters, audit, config),
              repair: new RepairFlow(target, clusters, audit, config),
              upgrade: new UpgradeFlow(target, snapshots, snapshotRows, clusters, audit, config),
              'rotate-gossip-key': new RotateGossipKeyFlow(target, secrets, audit, secondary),
              'rotate-certificates': new RotateCertificatesFlow(target, secrets, audit),
              'rotate-management-token': new RotateManagementTokenFlow(target, secrets, audit, config.CLUSTER_READY_TIMEOUT_MS),
              'rotate-ca': new RotateCaFlow(target, clusters, secrets, audit, config.CLUSTER_READY_TIMEOUT_MS),
              'update-endpoint': new UpdateEndpointFlow(target, clusters, audit),
            };
            const runner = new OperationRunner(ops, clusters, flows, { owner: `${hostname()}:${process.pid}`, leaseMs: config.OPERATION_LEASE_MS, open: (cluster) => target.open(cluster) });
            runner.onClose = () => target.close();
            return runner;
          },
          inject: [OperationRepository, ClusterRepository, SecretRepository, AuditRepository, ClusterTarget, SnapshotRepository, ClusterSnapshots, IssuedTokenRepository, ConsulUiRevoker],
        },
        {
          provide: TokenSweeper,
          useFactory: (tokens: IssuedTokenRepository, queue: OperationsQueue) => new TokenSweeper(tokens, queue, config.JOB_ATTEMPTS),
          inject: [IssuedTokenRepository, QUEUE],
        },
        {
          provide: ConsulUiRevoker,
          useFactory: (db: Db, clusters: ClusterRepository, secrets: SecretRepository) =>
            new ConsulUiRevoker(new ConsulUiSessionRepository(db), new ConsoleSessionRepository(db), clusters, secrets, new ConsulUiTokens()),
          inject: [DB, ClusterRepository, SecretRepository],
        },
        {
          provide: Reconciler,
          useFactory: (ops: OperationRepository, clusters: ClusterRepository, queue: OperationsQueue) => new Reconciler(ops, clusters, queue, config.JOB_ATTEMPTS),
          inject: [OperationRepository, ClusterRepository, QUEUE],
        },
        {
          provide: SnapshotScheduler,
          useFactory: (db: Db, queue: OperationsQueue) => new SnapshotScheduler(new SnapshotScheduleRepository(db), queue, config.JOB_ATTEMPTS),
          inject: [DB, QUEUE],
        },
        {
          provide: UpgradeScheduler,
          useFactory: (db: Db, queue: OperationsQueue) =>
            new UpgradeScheduler(new UpgradeScheduleRepository(db), queue, config.JOB_ATTEMPTS, recommendedVersion(config.versions)),
          inject: [DB, QUEUE],
        },
        {
          provide: CertificateRotationScheduler,
          useFactory: (db: Db, clusters: ClusterRepository, target: ClusterTarget, queue: OperationsQueue) =>
            new CertificateRotationScheduler(new CertificateScheduleRepository(db), clusters, target, queue, config.JOB_ATTEMPTS, certificateRotationPolicy(config)),
          inject: [DB, ClusterRepository, ClusterTarget, QUEUE],
        },
        {
          provide: HealthMonitor,
          useFactory: (db: Db, clusters: ClusterRepository, target: ClusterTarget, queue: OperationsQueue) =>
            new HealthMonitor(clusters, new TenantClusterRepository(db), target, queue, config.JOB_ATTEMPTS),
          inject: [DB, ClusterRepository, ClusterTarget, QUEUE],
        },
        {
          provide: WaveDriver,
          useFactory: (db: Db, queue: OperationsQueue) => new WaveDriver(new WaveRepository(db), queue, config.JOB_ATTEMPTS),
          inject: [DB, QUEUE],
        },
        {
          provide: BillingTicker,
          useFactory: (db: Db) => {
            const usage = new UsageRepository(db);
            const meter = new Meter(usage, { graceMs: config.METERING_GRACE_MS, planId: config.BILLING_PLAN_ID });
            const driver = new UsageExportDriver(usage, createUsageExporter(config), { concurrency: config.BILLING_EXPORT_CONCURRENCY, leaseMs: 5 * 60_000 });
            return new BillingTicker(usage, meter, driver);
          },
          inject: [DB],
        },
        {
          provide: AuditExporter,
          useFactory: (db: Db, secrets: SecretRepository) => {
            let credential: ReturnType<typeof azureCredential> | undefined;
            return new AuditExporter(new AuditExportRepository(db), secrets, {
              leaseMs: config.AUDIT_EXPORT_LEASE_MS,
              pageEvents: config.AUDIT_EXPORT_PAGE_EVENTS,
              retryMs: config.AUDIT_EXPORT_RETRY_MS,
              credential: () => (credential ??= azureCredential(config)),
              kill: new KillSwitch(config.AUDIT_EXPORT_KILL_AT),
            });
          },
          inject: [DB, SecretRepository],
        },
        WorkerService,
      ],
    };
  }
}

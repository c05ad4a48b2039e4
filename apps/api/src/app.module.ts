import { Inject, Injectable, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import type IORedis from 'ioredis';
import { AuditRepository, TenantAuditExportRepository, ConsoleSessionRepository, FederationRepository, ConsulUiSessionRepository, FleetRepository, IdempotencyRepository, IssuedTokenRepository, ManagedAppNotificationRepository, SecretBox, SecretRepository, secretBoxOf, TenantClusterRepository, TenantOperationRepository, TenantSnapshotRepository, UsageRepository, WaveRepository, azureCredential, closeDb, createDb, createOperationsQueue, createRedis, type Config, type Db, type OperationsQueue } from '../../../libs/core/src';
import { AdminController } from './admin/admin.controller';
import { BillingController } from './billing/billing.controller';
import { BillingService } from './billing/billing.service';
import { QueuesBoardController } from './admin/queues-board.controller';
import { WavesService } from './admin/waves.service';
import { AuthGuard } from './auth/auth.guard';
import { InputGuard } from './validation/input';
import { BearerAuthenticator } from './auth/bearer-authenticator';
import { CatalogController } from './catalog/catalog.controller';
import { ClustersController } from './clusters/clusters.controller';
import { ClustersService } from './clusters/clusters.service';
import { FederationController } from './federation/federation.controller';
import { FederationService } from './federation/federation.service';
import { IssuedTokensController } from './issued-tokens/issued-tokens.controller';
import { IssuedTokensService } from './issued-tokens/issued-tokens.service';
import { KubernetesController } from './kubernetes/kubernetes.controller';
import { AuditExportController } from './audit-export/audit-export.controller';
import { AuditExportService } from './audit-export/audit-export.service';
import { KubernetesService } from './kubernetes/kubernetes.service';
import { ErrorFilter } from './errors/error.filter';
import { HealthController } from './health/health.controller';
import { OperationDispatcher } from './operation.dispatcher';
import { OperationsController } from './operations/operations.controller';
import { SnapshotsController } from './snapshots/snapshots.controller';
import { SnapshotsService } from './snapshots/snapshots.service';
import { ConsulUiTokens } from '../../../libs/provisioner/src';
import { CONSUL_UI_TOKENS, UI_ORIGINS, UI_SESSION_GATE } from './consul-ui/consul-ui.tokens';
import { SsoController } from './consul-ui/sso.controller';
import { UiOrigins } from './consul-ui/ui-origins';
import { ConsulUiProxy } from './consul-ui/ui-proxy';
import { UiSessionGate } from './consul-ui/ui-session-gate';
import { ConsoleAuthController } from './console/console-auth.controller';
import { ConsoleAuthService } from './console/console-auth.service';
import { ConsoleOrigin, ConsoleSessions } from './console/console-sessions';
import { OidcClient } from './console/oidc-client';
import { AUTHENTICATOR, CONFIG, DB, ID_TOKEN_AUTHENTICATOR, OIDC_CLIENT, QUEUE, REDIS } from './tokens';
import { ArmManagedApplications } from './notifications/managed-applications';
import { NotificationsController } from './notifications/notifications.controller';
import { MANAGED_APPLICATIONS, NotificationsService } from './notifications/notifications.service';

@Injectable()
class Resources implements OnApplicationShutdown {
  constructor(
    @Inject(DB) private readonly db: Db,
    @Inject(QUEUE) private readonly queue: OperationsQueue,
    @Inject(REDIS) private readonly redis: IORedis,
    @Inject(CONSUL_UI_TOKENS) private readonly uiTokens: ConsulUiTokens,
  ) {}
  async onApplicationShutdown(): Promise<void> {
    this.uiTokens.close();
    await this.queue.close().catch(() => undefined);
    this.redis.disconnect();
    await closeDb(this.db);
  }
}

@Module({})
export class AppModule {
  static forRoot(config: Config): DynamicModule {
    return {
      module: AppModule,
      controllers: [ClustersController, FederationController, IssuedTokensController, KubernetesController, AuditExportController, SnapshotsController, OperationsController, CatalogController, HealthController, AdminController, BillingController, QueuesBoardController, ConsoleAuthController, SsoController, NotificationsController],
      providers: [
        { provide: CONFIG, useValue: config },
        { provide: DB, useFactory: () => createDb(config.DATABASE_URL, config.DATABASE_POOL_SIZE) },
        { provide: REDIS, useFactory: () => createRedis(config.REDIS_URL, false) },
        { provide: QUEUE, useFactory: (redis: IORedis) => createOperationsQueue(redis, config.QUEUE_PREFIX), inject: [REDIS] },
        {
          provide: AUTHENTICATOR,
          useFactory: () =>
            new BearerAuthenticator({
              identityMetadata: config.AUTH_METADATA_URL,
              issuer: config.AUTH_ISSUER.split(',').map((s) => s.trim()),
              audience: config.AUTH_AUDIENCE,
              clientId: config.AUTH_CLIENT_ID,
            }),
        },
        {
          provide: ID_TOKEN_AUTHENTICATOR,
          useFactory: () =>
            new BearerAuthenticator({
              identityMetadata: config.AUTH_METADATA_URL,
              issuer: config.AUTH_ISSUER.split(',').map((s) => s.trim()),
              audience: config.CONSOLE_CLIENT_ID,
              clientId: config.CONSOLE_CLIENT_ID,
              verifiedTokenCacheSize: 0,
            }),
        },
        { provide: OIDC_CLIENT, useFactory: () => new OidcClient(config.AUTH_METADATA_URL) },
        { provide: ConsoleSessionRepository, useFactory: (db: Db) => new ConsoleSessionRepository(db), inject: [DB] },
        ConsoleOrigin,
        ConsoleSessions,
        ConsoleAuthService,
        { provide: ConsulUiSessionRepository, useFactory: (db: Db) => new ConsulUiSessionRepository(db), inject: [DB] },
        { provide: UI_ORIGINS, useFactory: () => new UiOrigins(config) },
        { provide: CONSUL_UI_TOKENS, useFactory: () => new ConsulUiTokens() },
        {
          provide: UI_SESSION_GATE,
          useFactory: (
            repo: ConsulUiSessionRepository, consoleSessions: ConsoleSessionRepository, clusters: TenantClusterRepository, secrets: SecretRepository,
            audit: AuditRepository, tokens: ConsulUiTokens, dispatcher: OperationDispatcher,
          ) => new UiSessionGate(config, repo, consoleSessions, clusters, secrets, audit, tokens, dispatcher),
          inject: [ConsulUiSessionRepository, ConsoleSessionRepository, TenantClusterRepository, SecretRepository, AuditRepository, CONSUL_UI_TOKENS, OperationDispatcher],
        },
        ConsulUiProxy,
        { provide: SecretBox, useFactory: () => secretBoxOf(config) },
        // The tenant's repositories only (every read takes the tenant), and the fleet's for the operator routes:
        // the worker's reads by id across tenants (ClusterRepository, OperationRepository, SnapshotRepository) are not provided here.
        { provide: TenantClusterRepository, useFactory: (db: Db) => new TenantClusterRepository(db), inject: [DB] },
        { provide: FleetRepository, useFactory: (db: Db) => new FleetRepository(db), inject: [DB] },
        { provide: FederationRepository, useFactory: (db: Db) => new FederationRepository(db), inject: [DB] },
        { provide: TenantOperationRepository, useFactory: (db: Db) => new TenantOperationRepository(db), inject: [DB] },
        { provide: SecretRepository, useFactory: (db: Db, box: SecretBox) => new SecretRepository(db, box), inject: [DB, SecretBox] },
        { provide: IssuedTokenRepository, useFactory: (db: Db, secrets: SecretRepository) => new IssuedTokenRepository(db, secrets), inject: [DB, SecretRepository] },
        { provide: IdempotencyRepository, useFactory: (db: Db) => new IdempotencyRepository(db), inject: [DB] },
        { provide: AuditRepository, useFactory: (db: Db) => new AuditRepository(db), inject: [DB] },
        { provide: TenantSnapshotRepository, useFactory: (db: Db) => new TenantSnapshotRepository(db), inject: [DB] },
        { provide: WaveRepository, useFactory: (db: Db) => new WaveRepository(db), inject: [DB] },
        { provide: UsageRepository, useFactory: (db: Db) => new UsageRepository(db), inject: [DB] },
        { provide: ManagedAppNotificationRepository, useFactory: (db: Db) => new ManagedAppNotificationRepository(db), inject: [DB] },
        { provide: MANAGED_APPLICATIONS, useFactory: () => new ArmManagedApplications({ endpoint: config.ARM_ENDPOINT, credential: azureCredential(config) }) },
        NotificationsService,
        BillingService,
        OperationDispatcher,
        WavesService,
        ClustersService,
        FederationService,
        IssuedTokensService,
        KubernetesService,
        AuditExportService,
        { provide: TenantAuditExportRepository, useFactory: (db: Db, secrets: SecretRepository) => new TenantAuditExportRepository(db, secrets), inject: [DB, SecretRepository] },
        SnapshotsService,
        Resources,
        { provide: APP_GUARD, useClass: AuthGuard },
        // After authentication: every route's inputs against its schema (validation/input.ts).
        { provide: APP_GUARD, useClass: InputGuard },
        { provide: APP_FILTER, useClass: ErrorFilter },
      ],
    };
  }
}

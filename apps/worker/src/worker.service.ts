import http from 'node:http';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { Worker, type Job } from 'bullmq';
import type IORedis from 'ioredis';
import { register } from 'prom-client';
import { JOB_NAMES, OPERATIONS_QUEUE, closeDb, createRedis, errorBody, type Config, type Db, type JobName, type JobPayloads, type OperationsQueue } from '../../../libs/core/src';
import { OperationRunner } from './operations/operation.runner';
import { Reconciler } from './operations/reconciler';
import { SnapshotScheduler } from './schedules/snapshot.scheduler';
import { UpgradeScheduler } from './schedules/upgrade.scheduler';
import { HealthMonitor } from './health/health.monitor';
import { CertificateRotationScheduler } from './schedules/cert-rotation.scheduler';
import { WaveDriver } from './waves/wave.driver';
import { BillingTicker } from './billing/billing.ticker';
import { TokenSweeper } from './schedules/token.sweeper';
import { ConsulUiRevoker } from './consul-ui/consul-ui-revoker';
import { AuditExporter } from './audit-export/audit-exporter';
import { CONFIG, DB, QUEUE, REDIS } from './tokens';

type Handler = (job: Job<JobPayloads[JobName]>, token?: string) => Promise<void>;

/** The BullMQ worker, the reconciler loop and the /healthz + /metrics server. */
@Injectable()
export class WorkerService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly log = new Logger('worker');
  private worker?: Worker;
  private workerConnection?: IORedis;
  private timer?: NodeJS.Timeout;
  private scheduleTimer?: NodeJS.Timeout;
  private healthTimer?: NodeJS.Timeout;
  private waveTimer?: NodeJS.Timeout;
  private upgradeTimer?: NodeJS.Timeout;
  private billingTimer?: NodeJS.Timeout;
  private certTimer?: NodeJS.Timeout;
  private consoleTimer?: NodeJS.Timeout;
  private auditTimer?: NodeJS.Timeout;
  private auditRunning = false;
  private server?: http.Server;

  constructor(
    @Inject(CONFIG) private readonly config: Config,
    @Inject(DB) private readonly db: Db,
    @Inject(REDIS) private readonly redis: IORedis,
    @Inject(QUEUE) private readonly queue: OperationsQueue,
    private readonly runner: OperationRunner,
    private readonly reconciler: Reconciler,
    private readonly scheduler: SnapshotScheduler,
    private readonly health: HealthMonitor,
    private readonly waves: WaveDriver,
    private readonly upgrades: UpgradeScheduler,
    private readonly billing: BillingTicker,
    private readonly certificates: CertificateRotationScheduler,
    private readonly tokens: TokenSweeper,
    private readonly uiRevoker: ConsulUiRevoker,
    private readonly auditExport: AuditExporter,
  ) {}

  /** Every job name has exactly one handler, checked before the worker takes a job. */
  private handlers(): Record<JobName, Handler> {
    const handlers: Partial<Record<JobName, Handler>> = {
      'run-operation': (job, token) => this.runner.run(job as Job<JobPayloads['run-operation']>, token),
      'revoke-consul-ui-sessions': (job) => this.uiRevoker.finishAll((job as Job<JobPayloads['revoke-consul-ui-sessions']>).data.uiSessionIds),
    };
    const missing = JOB_NAMES.filter((n) => !handlers[n]);
    const extra = Object.keys(handlers).filter((n) => !(JOB_NAMES as string[]).includes(n));
    if (missing.length || extra.length) throw new Error(`job handlers out of step with the job catalog: missing ${missing.join(',') || '-'}, unknown ${extra.join(',') || '-'}`);
    return handlers as Record<JobName, Handler>;
  }

  async onApplicationBootstrap(): Promise<void> {
    const handlers = this.handlers();
    // An operation of a wave that ends here moves its wave on at once, not at the next tick.
    this.runner.onEnded = (op) => {
      if (op.requestedBy.startsWith('wave:')) this.waves.nudge(op.id);
    };
    this.worker = new Worker<JobPayloads[JobName], void, string>(
      OPERATIONS_QUEUE,
      async (job, token) => handlers[job.name as JobName](job, token),
      {
        connection: (this.workerConnection = createRedis(this.config.REDIS_URL, true)),
        prefix: this.config.QUEUE_PREFIX,
        concurrency: this.config.WORKER_CONCURRENCY,
        lockDuration: this.config.JOB_LOCK_MS,
        stalledInterval: Math.max(500, Math.floor(this.config.JOB_LOCK_MS / 2)),
        maxStalledCount: 10,
      },
    );
    this.worker.on('error', (e) => this.log.warn({ msg: 'queue connection error', error: e.message }));
    await this.worker.waitUntilReady();
    const tick = () =>
      Promise.all([
        this.reconciler.reconcile().catch((e: unknown) => this.log.warn({ msg: 'reconcile failed', error: (e as Error).message })),
        // Uncollected tokens are revoked on the same timer.
        this.tokens.tick().catch((e: unknown) => this.log.warn({ msg: 'token sweep failed', error: (e as Error).message })),
      ]);
    await tick();
    this.timer = setInterval(tick, this.config.RECONCILE_INTERVAL_MS);
    this.timer.unref();
    const schedule = () => this.scheduler.tick().catch((e: unknown) => this.log.warn({ msg: 'snapshot schedule failed', error: (e as Error).message }));
    this.scheduleTimer = setInterval(schedule, this.config.SNAPSHOT_TICK_MS);
    this.scheduleTimer.unref();
    const watch = () => this.health.tick().catch((e: unknown) => this.log.warn({ msg: 'health check failed', error: (e as Error).message }));
    this.healthTimer = setInterval(watch, this.config.HEALTH_TICK_MS);
    this.healthTimer.unref();
    const drive = () => this.waves.tick().catch((e: unknown) => this.log.warn({ msg: 'wave tick failed', error: (e as Error).message }));
    this.waveTimer = setInterval(drive, this.config.WAVE_TICK_MS);
    this.waveTimer.unref();
    const upgrade = () => this.upgrades.tick().catch((e: unknown) => this.log.warn({ msg: 'upgrade schedule failed', error: (e as Error).message }));
    this.upgradeTimer = setInterval(upgrade, this.config.UPGRADE_TICK_MS);
    this.upgradeTimer.unref();
    const bill = () => this.billing.tick().catch((e: unknown) => this.log.warn({ msg: 'billing tick failed', error: (e as Error).message }));
    this.billingTimer = setInterval(bill, this.config.BILLING_TICK_MS);
    this.billingTimer.unref();
    const certs = () => this.certificates.tick().catch((e: unknown) => this.log.warn({ msg: 'certificate schedule failed', error: (e as Error).message }));
    // Once at start too: clusters from before the certificate dates were kept on the row get them now (client-config needs the CA bundle).
    void certs();
    this.certTimer = setInterval(certs, this.config.CERT_ROTATION_TICK_MS);
    this.certTimer.unref();
    const sweepConsole = () => this.uiRevoker.sweep().catch((e: unknown) => this.log.warn({ msg: 'console sweep failed', error: (e as Error).message }));
    this.consoleTimer = setInterval(sweepConsole, this.config.CONSOLE_SWEEP_MS);
    this.consoleTimer.unref();
    // Audit export: one pass at a time per worker (a pass may outlast a tick); each export is held by one worker.
    const exportAudit = () => {
      if (this.auditRunning) return;
      this.auditRunning = true;
      void this.auditExport.tick()
        .catch((e: unknown) => this.log.warn({ msg: 'audit export tick failed', error: (e as Error).message }))
        .finally(() => (this.auditRunning = false));
    };
    exportAudit();
    this.auditTimer = setInterval(exportAudit, this.config.AUDIT_EXPORT_TICK_MS);
    this.auditTimer.unref();
    if (this.config.WORKER_PORT > 0) await this.listen();
    this.log.log({ msg: 'worker ready', concurrency: this.config.WORKER_CONCURRENCY, prefix: this.config.QUEUE_PREFIX });
  }

  private listen(): Promise<void> {
    this.server = http.createServer((req, res) => {
      if (req.url === '/healthz') {
        const running = this.worker?.isRunning() ?? false;
        res.writeHead(running ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: running ? 'ok' : 'stopped' }));
      } else if (req.url === '/metrics') {
        void register.metrics().then((m) => res.writeHead(200, { 'content-type': register.contentType }).end(m));
      } else {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify(errorBody('not_found', 'the worker serves /healthz and /metrics only')));
      }
    });
    const server = this.server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.config.WORKER_PORT, this.config.HOST, () => resolve());
    });
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.scheduleTimer) clearInterval(this.scheduleTimer);
    if (this.healthTimer) clearInterval(this.healthTimer);
    if (this.waveTimer) clearInterval(this.waveTimer);
    if (this.upgradeTimer) clearInterval(this.upgradeTimer);
    if (this.billingTimer) clearInterval(this.billingTimer);
    if (this.certTimer) clearInterval(this.certTimer);
    if (this.consoleTimer) clearInterval(this.consoleTimer);
    if (this.auditTimer) clearInterval(this.auditTimer);
    this.server?.close();
    this.waves.close();
    await this.worker?.close();
    // BullMQ does not close a connection it was given.
    this.workerConnection?.disconnect();
    await this.queue.close().catch(() => undefined);
    this.redis.disconnect();
    this.runner.close();
    this.uiRevoker.close();
    await closeDb(this.db);
  }
}

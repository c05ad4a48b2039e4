import http from 'node:http';
import { hostname } from 'node:os';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { Worker, type Job } from 'bullmq';
import type IORedis from 'ioredis';
import { register } from 'prom-client';
import { JOB_NAMES, OPERATIONS_QUEUE, ScheduleRunRepository, closeDb, createRedis, errorBody, type Config, type Db, type JobName, type JobPayloads, type OperationsQueue } from '../../../libs/core/src';
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
import { PeriodicSchedule, type ScheduleName } from './schedules/periodic-schedule';
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
  private waveTimer?: NodeJS.Timeout;
  private consoleTimer?: NodeJS.Timeout;
  private schedules: PeriodicSchedule[] = [];
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
    const reconcile = () => this.reconciler.reconcile().catch((e: unknown) => this.log.warn({ msg: 'reconcile failed', error: (e as Error).message }));
    await reconcile();
    this.timer = setInterval(reconcile, this.config.RECONCILE_INTERVAL_MS);
    this.timer.unref();
    const drive = () => this.waves.tick().catch((e: unknown) => this.log.warn({ msg: 'wave tick failed', error: (e as Error).message }));
    this.waveTimer = setInterval(drive, this.config.WAVE_TICK_MS);
    this.waveTimer.unref();
    // Clusters from before the certificate dates were kept on the row get them at start (client-config needs the CA bundle).
    void this.certificates.backfill().catch((e: unknown) => this.log.warn({ msg: 'certificate dates backfill failed', error: (e as Error).message }));
    this.startSchedules();
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

  /**
   * The schedulers, each run once per period across every worker (the ScheduleRun ledger; see
   * PeriodicSchedule): the reconciler and the wave driver stay on every worker, their work being
   * claimed row by row.
   */
  private startSchedules(): void {
    const c = this.config;
    const periods: Record<ScheduleName, [number, () => Promise<unknown>]> = {
      snapshots: [c.SNAPSHOT_TICK_MS, () => this.scheduler.tick()],
      'automatic-upgrades': [c.UPGRADE_TICK_MS, () => this.upgrades.tick()],
      'certificate-expiry': [c.CERT_ROTATION_TICK_MS, () => this.certificates.tick()],
      health: [c.HEALTH_TICK_MS, () => this.health.tick()],
      billing: [c.BILLING_TICK_MS, () => this.billing.tick()],
      'token-sweep': [c.RECONCILE_INTERVAL_MS, () => this.tokens.tick()],
    };
    const ledger = new ScheduleRunRepository(this.db);
    const owner = `${hostname()}:${process.pid}`;
    this.schedules = Object.entries(periods).map(
      ([name, [periodMs, run]]) => new PeriodicSchedule(ledger, { name: name as ScheduleName, periodMs, owner, leaseMs: c.OPERATION_LEASE_MS, run }),
    );
    for (const s of this.schedules) s.start();
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
    if (this.waveTimer) clearInterval(this.waveTimer);
    if (this.consoleTimer) clearInterval(this.consoleTimer);
    if (this.auditTimer) clearInterval(this.auditTimer);
    // A run in flight ends (and is recorded) before the database closes.
    await Promise.all(this.schedules.map((s) => s.stop()));
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

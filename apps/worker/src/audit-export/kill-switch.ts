/** The points of the audit export where a test may have the worker killed (AUDIT_EXPORT_KILL_AT). */
export type KillPoint = 'before-append' | 'after-create' | 'after-append' | 'after-readback' | 'after-commit';

/**
 * Tests only (the configuration refuses AUDIT_EXPORT_KILL_AT outside NODE_ENV=test): SIGKILLs this
 * process the n-th time it reaches the point, so a test proves that a kill exactly there, say
 * between an append and its commit, loses and repeats nothing.
 */
export class KillSwitch {
  private readonly point?: KillPoint;
  private left: number;

  constructor(setting: string | undefined) {
    const [point, n] = (setting ?? '').split(':');
    this.point = setting ? (point as KillPoint) : undefined;
    this.left = n ? Number(n) : 1;
  }

  at(point: KillPoint): void {
    if (point !== this.point || --this.left > 0) return;
    process.stderr.write(`audit export: killed at ${point} (AUDIT_EXPORT_KILL_AT)\n`);
    process.kill(process.pid, 'SIGKILL');
  }
}

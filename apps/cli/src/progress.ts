import type { TextSink } from './command';

/** Where a long-running thing stands: percent done, its state, and what it is doing now. */
export interface ProgressState {
  percent: number;
  state: string;
  detail: string | null;
}

export interface ProgressReporter {
  show(p: ProgressState): void;
  end(): void;
}

const BAR_WIDTH = 24;

/** A bar redrawn in place on a terminal. */
class ProgressBar implements ProgressReporter {
  private drawn = false;

  constructor(private readonly out: TextSink) {}

  show(p: ProgressState): void {
    const percent = Math.max(0, Math.min(100, Math.round(p.percent)));
    const filled = Math.round((percent / 100) * BAR_WIDTH);
    const bar = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`;
    let line = `${bar} ${String(percent).padStart(3)}%  ${p.state}${p.detail ? `  ${p.detail}` : ''}`;
    const columns = this.out.columns ?? 80;
    if (line.length >= columns) line = line.slice(0, columns - 1);
    this.out.write(`\r\x1b[K${line}`);
    this.drawn = true;
  }

  end(): void {
    if (this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}

/** One line per change, for logs and pipes. */
class ProgressLines implements ProgressReporter {
  private last = '';

  constructor(private readonly out: TextSink) {}

  show(p: ProgressState): void {
    const line = `${String(Math.round(p.percent)).padStart(3)}%  ${p.state}${p.detail ? `  ${p.detail}` : ''}`;
    if (line === this.last) return;
    this.last = line;
    this.out.write(`${line}\n`);
  }

  end(): void {}
}

export function progressReporter(out: TextSink): ProgressReporter {
  return out.isTTY ? new ProgressBar(out) : new ProgressLines(out);
}

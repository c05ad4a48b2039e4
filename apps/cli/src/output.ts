import type { TextSink } from './command';

type Cell = string | number | boolean | null | undefined;

function text(v: Cell): string {
  return v === null || v === undefined || v === '' ? '-' : String(v);
}

/** What a command prints on stdout: the API's JSON under --json, tables and fields otherwise. */
export class Output {
  constructor(
    private readonly stdout: TextSink,
    readonly json: boolean,
  ) {}

  /** Prints `body` as JSON under --json; otherwise runs the human rendering. */
  result(body: unknown, human: () => void): void {
    if (this.json) this.line(JSON.stringify(body, null, 2));
    else human();
  }

  line(s = ''): void {
    this.stdout.write(`${s}\n`);
  }

  /** `Label:  value` lines, labels aligned. */
  fields(rows: ReadonlyArray<readonly [string, Cell]>): void {
    const width = Math.max(...rows.map(([k]) => k.length)) + 1;
    for (const [k, v] of rows) this.line(`${`${k}:`.padEnd(width)}  ${text(v)}`);
  }

  table(headers: readonly string[], rows: ReadonlyArray<readonly Cell[]>): void {
    const cells = rows.map((r) => r.map(text));
    const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]?.length ?? 0)));
    const render = (r: readonly string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
    this.line(render(headers));
    for (const r of cells) this.line(render(r));
  }
}

/**
 * A Dockerfile read as instructions (the reference's syntax: one instruction a line, `\` continues
 * a line, `#` starts a comment line; https://docs.docker.com/reference/dockerfile/), enough to check
 * what an image recipe runs and copies without a Docker engine.
 */
export interface Instruction {
  keyword: string;
  args: string;
}

export interface Stage {
  /** FROM's image and its `AS` name. */
  from: string;
  name?: string;
  instructions: Instruction[];
}

export function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const lines: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    if (/^\s*#/.test(raw)) continue;
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const whole = (pending + line).trim();
    pending = '';
    if (whole) lines.push(whole);
  }
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, keyword, rest] = /^(\S+)\s*(.*)$/.exec(line)!;
    const k = keyword.toUpperCase();
    if (k === 'ARG' && stages.length === 0) {
      const [name, value = ''] = rest.split('=');
      args.set(name, value);
    } else if (k === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest)!;
      const from = m[1].replace(/^\$\{(\w+)\}$/, (_, a: string) => args.get(a) ?? '');
      stages.push({ from, name: m[2], instructions: [] });
    } else {
      stages[stages.length - 1]?.instructions.push({ keyword: k, args: rest });
    }
  }
  return { args, stages };
}

/** An exec-form instruction's words (`CMD ["node", "x.js"]`). */
export function execForm(instruction: Instruction | undefined): string[] {
  if (!instruction) return [];
  return JSON.parse(instruction.args) as string[];
}

/** ENV's `key=value` pairs (values unquoted, without spaces: all this recipe uses). */
export function envPairs(instructions: Instruction[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of instructions.filter((x) => x.keyword === 'ENV')) {
    for (const pair of i.args.split(/\s+/)) {
      const eq = pair.indexOf('=');
      env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return env;
}

/** `COPY --from=<stage> <source> <destination>` (one source each, as this recipe writes them). */
export function copiesFrom(instructions: Instruction[], stage: string): { source: string; destination: string }[] {
  return instructions
    .filter((i) => i.keyword === 'COPY')
    .map((i) => i.args.split(/\s+/))
    .filter((words) => words.includes(`--from=${stage}`))
    .map((words) => {
      const rest = words.filter((w) => !w.startsWith('--'));
      return { source: rest[0], destination: rest[1] };
    });
}

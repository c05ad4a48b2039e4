import { parseArgs } from 'node:util';

export interface OptionSpec {
  type: 'string' | 'boolean';
  description: string;
  /** The placeholder usage shows after a string option: `--tier T`. */
  value?: string;
  required?: boolean;
  short?: string;
  /** May be given more than once (`--allow A --allow B`); read with `strings`. */
  multiple?: boolean;
}

/** A wrong command line: exit 2 with the command's usage line. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly usage?: string,
  ) {
    super(message);
  }
}

/** Options every command takes. */
export const COMMON_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  json: { type: 'boolean', description: "print the API's JSON as is instead of tables" },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
};

export interface ArgsSpec {
  positionals?: readonly string[];
  options?: Readonly<Record<string, OptionSpec>>;
}

type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** One command's arguments, checked against its spec; accessors fail with the usage line. */
export class ParsedArgs {
  constructor(
    private readonly values: Values,
    readonly positionals: readonly string[],
    readonly usage: string,
  ) {}

  flag(name: string): boolean {
    return this.values[name] === true;
  }

  string(name: string): string | undefined {
    const v = this.values[name];
    return typeof v === 'string' ? v : undefined;
  }

  /** Every value of a repeatable option, in the order given (none: empty). */
  strings(name: string): string[] {
    const v = this.values[name];
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? [v] : [];
  }

  /** A required option (checked when parsing, so present here). */
  required(name: string): string {
    const v = this.string(name);
    if (v === undefined) throw this.fail(`--${name} is required`);
    return v;
  }

  integer(name: string, min: number): number | undefined {
    const v = this.string(name);
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v) || Number(v) < min) throw this.fail(`--${name} must be a whole number of at least ${min}, not '${v}'`);
    return Number(v);
  }

  json(name: string): unknown {
    const v = this.string(name);
    if (v === undefined) return undefined;
    try {
      return JSON.parse(v);
    } catch {
      throw this.fail(`--${name} must be JSON, e.g. '{"tier":"standard"}'`);
    }
  }

  fail(message: string): UsageError {
    return new UsageError(message, this.usage);
  }
}

export function parseCommandLine(argv: readonly string[], spec: ArgsSpec, usage: string): ParsedArgs {
  const options = { ...(spec.options ?? {}), ...COMMON_OPTIONS };
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({
      args: [...argv],
      options: Object.fromEntries(Object.entries(options).map(([name, o]) => [name, { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) }])),
      allowPositionals: true,
      strict: true,
    }) as { values: Values; positionals: string[] };
  } catch (e) {
    // node's messages go on to explain `--`; the first sentence is what the user needs.
    throw new UsageError((e as Error).message.split(/\.\s/)[0]!.replace(/\.$/, ''), usage);
  }
  const args = new ParsedArgs(parsed.values, parsed.positionals, usage);
  if (args.flag('help')) return args;
  const expected = spec.positionals ?? [];
  if (parsed.positionals.length < expected.length) throw args.fail(`missing ${expected.slice(parsed.positionals.length).join(' ')}`);
  if (parsed.positionals.length > expected.length) throw args.fail(`unexpected argument '${parsed.positionals[expected.length]}'`);
  for (const [name, o] of Object.entries(options)) {
    if (o.required && parsed.values[name] === undefined) throw args.fail(`--${name} is required`);
  }
  return args;
}

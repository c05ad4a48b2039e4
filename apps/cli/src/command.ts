import type { ApiClient } from './api-client';
import type { OptionSpec, ParsedArgs } from './args';
import type { Output } from './output';

/** Where a run writes, and what it reads from its surroundings; tests pass their own. */
export interface TextSink {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface CliIo {
  stdout: TextSink;
  stderr: TextSink;
  env: Readonly<Record<string, string | undefined>>;
  /** Read by `login --token -`; the process's stdin when absent. */
  stdin?: NodeJS.ReadableStream;
}

export interface CommandContext {
  readonly args: ParsedArgs;
  readonly io: CliIo;
  readonly output: Output;
  /** A client for the API the caller is logged in to (or HCS_API / HCS_TOKEN). */
  api(): ApiClient;
}

export interface Command {
  readonly kind: 'command';
  readonly name: string;
  readonly summary: string;
  /** Names of the required positional arguments, in order, as help shows them (`ID`). */
  readonly positionals?: readonly string[];
  readonly options?: Readonly<Record<string, OptionSpec>>;
  /** Returns the exit code; nothing means success. */
  run(ctx: CommandContext): Promise<number | void>;
}

export interface CommandGroup {
  readonly kind: 'group';
  readonly name: string;
  readonly summary: string;
  readonly children: readonly CommandNode[];
}

export type CommandNode = Command | CommandGroup;

export function command(spec: Omit<Command, 'kind'>): Command {
  return { kind: 'command', ...spec };
}

export function group(name: string, summary: string, children: readonly CommandNode[]): CommandGroup {
  return { kind: 'group', name, summary, children };
}

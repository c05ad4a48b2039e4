import { COMMON_OPTIONS, type OptionSpec } from './args';
import type { Command, CommandGroup } from './command';

const PROGRAM = 'hcs';

function optionUsage(name: string, o: OptionSpec): string {
  const text = o.type === 'string' ? `--${name} ${o.value ?? 'VALUE'}` : `--${name}`;
  return o.required ? text : `[${text}]`;
}

/** `usage: hcs clusters create --name N ... [--wait] [--json]`, derived from the command's spec. */
export function usageLine(path: readonly string[], cmd: Command): string {
  const options = Object.entries(cmd.options ?? {});
  const parts = [
    PROGRAM,
    ...path,
    ...(cmd.positionals ?? []),
    ...options.filter(([, o]) => o.required).map(([n, o]) => optionUsage(n, o)),
    ...options.filter(([, o]) => !o.required).map(([n, o]) => optionUsage(n, o)),
    '[--json]',
  ];
  return `usage: ${parts.join(' ')}`;
}

export function commandHelp(path: readonly string[], cmd: Command): string {
  const options = Object.entries({ ...(cmd.options ?? {}), ...COMMON_OPTIONS });
  const left = options.map(([n, o]) => (o.short ? `-${o.short}, ` : '') + (o.type === 'string' ? `--${n} ${o.value ?? 'VALUE'}` : `--${n}`));
  const width = Math.max(...left.map((l) => l.length));
  return [
    usageLine(path, cmd),
    '',
    cmd.summary,
    '',
    'Options:',
    ...options.map(([, o], i) => `  ${left[i]!.padEnd(width)}  ${o.description}${o.required ? ' (required)' : ''}`),
    '',
  ].join('\n');
}

export function groupHelp(path: readonly string[], g: CommandGroup, footer: readonly string[] = []): string {
  const width = Math.max(...g.children.map((c) => c.name.length));
  const where = [PROGRAM, ...path].join(' ');
  return [
    `usage: ${where} <command> [arguments] [--json]`,
    '',
    g.summary,
    '',
    'Commands:',
    ...g.children.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    `Run '${where} <command> --help' for a command's options.`,
    ...footer,
    '',
  ].join('\n');
}

/** What `hcs --help` adds below the commands: where settings come from and what exit codes mean. */
export const PROGRAM_FOOTER: readonly string[] = [
  '',
  'Environment:',
  '  HCS_API     the API to call (overrides the one saved by login; default http://127.0.0.1:3000)',
  '  HCS_TOKEN   the access token to call it with (overrides the saved one)',
  '  HCS_CONFIG  where login saves its settings (default ~/.config/hcs/config.json)',
  '',
  'Exit codes:',
  '  0 done   1 the operation failed or was canceled, reconciliation found differences, or a server error',
  '  2 usage error   3 the API refused the request (4xx)   4 the API could not be reached',
];

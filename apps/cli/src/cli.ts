import { ApiClient, ApiError, ApiUnreachable } from './api-client';
import { UsageError, parseCommandLine } from './args';
import { group, type CliIo, type Command, type CommandGroup } from './command';
import { waves } from './commands/admin-waves';
import { auditExport } from './commands/audit-export';
import { adminBilling, billing } from './commands/billing';
import { clusters } from './commands/clusters';
import { kubernetes } from './commands/kubernetes';
import { login, logout } from './commands/login';
import { operations } from './commands/operations';
import { snapshots } from './commands/snapshots';
import { tokens } from './commands/tokens';
import { NotLoggedIn, resolveLogin } from './config-store';
import { ExitCode } from './exit-codes';
import { PROGRAM_FOOTER, commandHelp, groupHelp, usageLine } from './help';
import { Output } from './output';
import { Unsuccessful } from './watch';

export type { CliIo } from './command';
export { ExitCode } from './exit-codes';

const admin = group('admin', 'Fleet maintenance and billing for SREs (needs the Platform.SRE role)', [waves, adminBilling]);

const PROGRAM = group('hcs', 'Managed Consul from the command line: clusters, tokens, snapshots, operations, billing and fleet maintenance.', [
  login, logout, clusters, tokens, kubernetes, auditExport, snapshots, operations, billing, admin,
]);

const HELP_WORDS = new Set(['--help', '-h', 'help']);

/** Walks the words naming a command (`clusters create`); the rest are its arguments. */
function resolve(argv: readonly string[]): { path: string[]; node: Command | CommandGroup; rest: readonly string[]; unknown?: string } {
  let node: Command | CommandGroup = PROGRAM;
  const path: string[] = [];
  let i = 0;
  while (node.kind === 'group' && i < argv.length && !HELP_WORDS.has(argv[i]!)) {
    const word: string = argv[i]!;
    const child: Command | CommandGroup | undefined = node.children.find((c) => c.name === word);
    if (!child) return { path, node, rest: argv.slice(i), unknown: word };
    path.push(word);
    node = child;
    i++;
  }
  return { path, node, rest: argv.slice(i) };
}

function report(e: unknown, io: CliIo, output: Output | null): number {
  const say = (line: string) => io.stderr.write(`hcs: ${line}\n`);
  if (e instanceof UsageError) {
    say(e.message);
    if (e.usage) io.stderr.write(`${e.usage}\n`);
    return ExitCode.Usage;
  }
  if (e instanceof NotLoggedIn) {
    say(e.message);
    return ExitCode.Usage;
  }
  if (e instanceof ApiError) {
    say(`${e.code}: ${e.message}`);
    if (e.status === 401) say("run 'hcs login' with a fresh token");
    return e.status < 500 ? ExitCode.Rejected : ExitCode.Failed;
  }
  if (e instanceof ApiUnreachable) {
    say(e.message);
    return ExitCode.Unreachable;
  }
  if (e instanceof Unsuccessful) {
    if (output?.json) output.line(JSON.stringify(e.result, null, 2));
    say(e.message);
    return ExitCode.Failed;
  }
  say(e instanceof Error ? e.message : String(e));
  return ExitCode.Failed;
}

/** Runs one `hcs` command line; returns the exit code. Reads nothing from the process but what `io` gives it. */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const { path, node, rest, unknown } = resolve(argv);
  if (node.kind === 'group') {
    const help = groupHelp(path, node, node === PROGRAM ? PROGRAM_FOOTER : []);
    if (rest.length && HELP_WORDS.has(rest[0]!)) {
      io.stdout.write(help);
      return ExitCode.Ok;
    }
    io.stderr.write(`${unknown === undefined ? '' : `hcs: unknown command '${[...path, unknown].join(' ')}'\n`}${help}`);
    return ExitCode.Usage;
  }
  let output: Output | null = null;
  try {
    const args = parseCommandLine(rest, node, usageLine(path, node));
    if (args.flag('help')) {
      io.stdout.write(commandHelp(path, node));
      return ExitCode.Ok;
    }
    output = new Output(io.stdout, args.flag('json'));
    let client: ApiClient | undefined;
    const api = () => {
      if (!client) {
        const { api: base, token } = resolveLogin(io.env);
        client = new ApiClient(base, token);
      }
      return client;
    };
    return (await node.run({ args, io, output, api })) ?? ExitCode.Ok;
  } catch (e) {
    return report(e, io, output);
  }
}

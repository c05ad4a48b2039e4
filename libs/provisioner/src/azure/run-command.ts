import type { ServerFile } from '../server-files';
import { BOOT_STATUS, SECRETS_FETCHER, SERVER_UNIT } from './cloud-init';

/**
 * The scripts the Azure target runs on a scale-set instance through Run
 * Command (`RunShellScript`): a fixed, small vocabulary, one action a line,
 * so what a script can do is plain from reading it (and a test's local ARM
 * server can check every line). Only public files travel in a script (base64
 * encoded); a server's secret files (its key, its config with the gossip key
 * and ACL tokens) the instance fetches from the cluster's Key Vault
 * (FETCH_SECRETS_LINE): Run Command keeps its scripts on the VM's disk, under
 * /var/lib/waagent.
 */

const UNIT = SERVER_UNIT.split('/').pop()!;

/** Writes one file atomically: a `.new` file with its mode and owner, renamed over the old one. */
export function writeFileLine(file: Pick<ServerFile, 'path' | 'mode' | 'content'>): string {
  if (/'/.test(file.path)) throw new Error(`a path with a quote cannot be written by Run Command: ${file.path}`);
  const b64 = Buffer.from(file.content, 'utf8').toString('base64');
  const mode = `0${file.mode.toString(8).padStart(3, '0')}`;
  const tmp = `'${file.path}.new'`;
  return `printf '%s' '${b64}' | base64 -d > ${tmp} && chmod ${mode} ${tmp} && chown consul:consul ${tmp} && mv ${tmp} '${file.path}'`;
}

/** The instance fetches its server's secret files again from the vault (their latest versions), waiting a minute at most. */
export const FETCH_SECRETS_LINE = `${SECRETS_FETCHER} 60`;

/** Consul re-reads its files (SIGHUP through the unit's ExecReload): TLS files and CAs apply to new connections. */
export const RELOAD_LINE = `systemctl reload ${UNIT}`;
/** Consul stops and starts again on the files as they are. */
export const RESTART_LINE = `systemctl restart ${UNIT}`;

/**
 * What a script prints last: its own exit status. Linux Run Command reports
 * `ProvisioningState/succeeded` whatever the script's exit code, with only its
 * output (the last 4 KiB of stdout and of stderr):
 * https://learn.microsoft.com/azure/virtual-machines/linux/run-command#restrictions.
 */
export const EXIT_MARKER = 'managed-consul-run-command-exit=';
const EXIT_TRAP = `trap 'echo "${EXIT_MARKER}$?"' EXIT`;

/** A script: stop at the first failing line, and print the exit status at the end whatever happens. */
export function runCommandScript(lines: string[]): string[] {
  return ['set -eu', EXIT_TRAP, ...lines];
}

/** The boot's outcome on the instance (the boot script's status file), or `pending` while it runs. */
export const BOOT_STATUS_LINE = `cat '${BOOT_STATUS}' 2>/dev/null || echo pending`;

export interface RunCommandOutput {
  stdout: string;
  stderr: string;
  /** The script's exit status from its last line, undefined when the output does not end with it (cut off, or not our script). */
  exitCode?: number;
}

/**
 * Reads a Linux Run Command status message ("Enable succeeded: \n[stdout]\n...\n[stderr]\n...",
 * https://learn.microsoft.com/azure/virtual-machines/linux/run-command#azure-cli).
 */
export function parseRunCommandOutput(message: string): RunCommandOutput {
  const m = /\[stdout\]\n([^]*?)\n\[stderr\]\n([^]*)$/.exec(message);
  const stdout = m ? m[1] : '';
  const stderr = m ? m[2] : message;
  const last = stdout.trimEnd().split('\n').pop() ?? '';
  const exit = last.startsWith(EXIT_MARKER) ? /^\d+$/.exec(last.slice(EXIT_MARKER.length)) : null;
  const body = exit ? stdout.trimEnd().split('\n').slice(0, -1).join('\n') : stdout;
  return { stdout: body, stderr, exitCode: exit ? Number(exit[0]) : undefined };
}

/** What one line of such a script does, or why it is not one of ours (a test's ARM server runs scripts with this). */
export type RunCommandAction =
  | { kind: 'set' }
  | { kind: 'trap' }
  | { kind: 'boot-status' }
  | { kind: 'write'; path: string; mode: number; content: string }
  | { kind: 'fetch-secrets' }
  | { kind: 'reload' }
  | { kind: 'restart' };

const WRITE = /^printf '%s' '([A-Za-z0-9+/=]*)' \| base64 -d > '([^']+)\.new' && chmod (0[0-7]{3}) '\2\.new' && chown consul:consul '\2\.new' && mv '\2\.new' '\2'$/;

export function parseRunCommandLine(line: string): RunCommandAction {
  if (line === 'set -eu') return { kind: 'set' };
  if (line === EXIT_TRAP) return { kind: 'trap' };
  if (line === BOOT_STATUS_LINE) return { kind: 'boot-status' };
  if (line === RELOAD_LINE) return { kind: 'reload' };
  if (line === RESTART_LINE) return { kind: 'restart' };
  if (line === FETCH_SECRETS_LINE) return { kind: 'fetch-secrets' };
  const m = WRITE.exec(line);
  if (m) return { kind: 'write', path: m[2], mode: parseInt(m[3], 8), content: Buffer.from(m[1], 'base64').toString('utf8') };
  throw new Error(`not a managed-consul Run Command line: ${line.length > 80 ? `${line.slice(0, 80)}...` : line}`);
}

import type { ServerFile } from '../server-files';
import { SERVER_UNIT } from './cloud-init';

/**
 * The scripts the Azure target runs on a scale-set instance through Run
 * Command (`RunShellScript`): a fixed, small vocabulary, one action a line,
 * so what a script can do is plain from reading it (and a test's local ARM
 * server can check every line). File contents travel base64 encoded: a key
 * or the config (gossip key, management token) never appears in the clear;
 * Run Command's own transport is ARM's HTTPS.
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

/** Consul re-reads its files (SIGHUP through the unit's ExecReload): TLS files and CAs apply to new connections. */
export const RELOAD_LINE = `systemctl reload ${UNIT}`;
/** Consul stops and starts again on the files as they are. */
export const RESTART_LINE = `systemctl restart ${UNIT}`;

/** A script: stop at the first failing line. */
export function runCommandScript(lines: string[]): string[] {
  return ['set -eu', ...lines];
}

/** What one line of such a script does, or why it is not one of ours (a test's ARM server runs scripts with this). */
export type RunCommandAction =
  | { kind: 'set' }
  | { kind: 'write'; path: string; mode: number; content: string }
  | { kind: 'reload' }
  | { kind: 'restart' };

const WRITE = /^printf '%s' '([A-Za-z0-9+/=]*)' \| base64 -d > '([^']+)\.new' && chmod (0[0-7]{3}) '\2\.new' && chown consul:consul '\2\.new' && mv '\2\.new' '\2'$/;

export function parseRunCommandLine(line: string): RunCommandAction {
  if (line === 'set -eu') return { kind: 'set' };
  if (line === RELOAD_LINE) return { kind: 'reload' };
  if (line === RESTART_LINE) return { kind: 'restart' };
  const m = WRITE.exec(line);
  if (m) return { kind: 'write', path: m[2], mode: parseInt(m[3], 8), content: Buffer.from(m[1], 'base64').toString('utf8') };
  throw new Error(`not a managed-consul Run Command line: ${line.length > 80 ? `${line.slice(0, 80)}...` : line}`);
}

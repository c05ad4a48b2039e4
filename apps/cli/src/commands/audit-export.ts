import type { AuditExportView } from '../../../../libs/contracts/src';
import { command, type CommandContext } from '../command';
import { firstLine } from '../stdin';

/** The export's configuration and status as `Label: value` lines (never a SAS: the API does not answer it). */
function show(ctx: CommandContext, v: AuditExportView): void {
  const st = v.status;
  ctx.output.result(v, () => ctx.output.fields([
    ['Export', v.enabled ? `on (${st.state})` : 'off'],
    ['Container', v.containerUrl],
    ['Auth', v.auth === 'managed-identity' ? 'managed identity (Storage Blob Data Contributor on the container)' : v.auth === 'sas' ? 'SAS' : null],
    ['SAS expires', v.sasExpiresAt],
    ['Blobs', v.blobNames],
    ['Last exported', st.lastExportedEvent ? `event ${st.lastExportedEvent.seq} of ${st.lastExportedEvent.time} into ${st.lastExportedBlob}, at ${st.lastExportedAt}` : null],
    ['Lag', st.lag.events ? `${st.lag.events} event(s), oldest ${st.lag.seconds} s ago` : 'none'],
    ['Last error', st.lastError ? `${st.lastError.code} at ${st.lastError.at}: ${st.lastError.message}` : null],
    ['Retrying', st.state === 'retrying' ? `attempt ${st.attempts + 1} at ${st.nextAttemptAt}` : null],
  ]));
}

export const auditExport = command({
  name: 'audit-export',
  summary: "Export the cluster's audit events to your blob container, as hourly JSON-lines blobs (each event once); without options, show the export and its status",
  positionals: ['ID'],
  options: {
    'container-url': { type: 'string', value: 'URL', description: "the container: https://<account>.blob.core.windows.net/<container>?<SAS> (sp=rac); '-' reads it from stdin (keeps the SAS out of the process list and your shell history)" },
    'managed-identity': { type: 'boolean', description: "with --container-url (no SAS): the control plane's identity writes; assign it Storage Blob Data Contributor on the container" },
    off: { type: 'boolean', description: 'turn the export off and forget the SAS (a later --container-url resumes after the last exported event)' },
  },
  async run(ctx) {
    const a = ctx.args;
    const path = `/v1/clusters/${encodeURIComponent(a.positionals[0]!)}/audit-export`;
    const given = a.string('container-url');
    if (a.flag('off')) {
      if (given !== undefined || a.flag('managed-identity')) throw a.fail('--off goes alone');
      return show(ctx, await ctx.api().delete<AuditExportView>(path));
    }
    if (given === undefined) {
      if (a.flag('managed-identity')) throw a.fail('--managed-identity goes with --container-url (the container, without a SAS)');
      return show(ctx, await ctx.api().get<AuditExportView>(path));
    }
    const containerUrl = (given === '-' ? await firstLine(ctx.io.stdin ?? process.stdin) : given).trim();
    if (!containerUrl) throw a.fail('--container-url is empty');
    const body = a.flag('managed-identity') ? { containerUrl, managedIdentity: true } : { containerUrl };
    show(ctx, await ctx.api().put<AuditExportView>(path, body));
  },
});

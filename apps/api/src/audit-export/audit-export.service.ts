import { Inject, Injectable } from '@nestjs/common';
import { auditProbeBlobName, checkContainerUrl, type AuditExportRequest, type AuditExportView } from '../../../../libs/contracts/src';
import { ClusterState, ConflictError, TenantAuditExportRepository, UnprocessableError, azureCredential, type Config } from '../../../../libs/core/src';
import { AuditContainer, AuditStorageError, type AuditContainerAccess } from '../../../../libs/provisioner/src';
import type { Principal } from '../auth/principal';
import { ClustersService } from '../clusters/clusters.service';
import { CONFIG } from '../tokens';
import { auditExportView } from './audit-export.view';

/** Whether this control plane has an Azure identity of its own to write with (not on one machine). */
function hasAzureIdentity(config: Config): boolean {
  return Boolean((config.AZURE_CLIENT_ID && config.AZURE_CLIENT_SECRET) || config.AZURE_MANAGED_IDENTITY_CLIENT_ID || config.defaultTarget === 'azure');
}

/**
 * A cluster's audit export (docs/audit-export.md). A PUT checks the URL (libs/contracts'
 * checkContainerUrl: only blob endpoints, the SAS's scope, permissions and expiry), then writes a
 * probe blob the way the export writes, so a wrong SAS is a 422 now and not a failure later; only
 * then is anything saved. The SAS is sealed and never answered, logged or put in an error.
 */
@Injectable()
export class AuditExportService {
  constructor(@Inject(CONFIG) private readonly config: Config, private readonly clusters: ClustersService, private readonly exports: TenantAuditExportRepository) {}

  async get(caller: Principal, id: string): Promise<AuditExportView> {
    const cluster = await this.clusters.require(caller, id);
    return auditExportView(await this.exports.find(caller.tenantId, cluster.id));
  }

  async put(caller: Principal, id: string, body: AuditExportRequest): Promise<AuditExportView> {
    const cluster = await this.clusters.require(caller, id);
    if (cluster.state === ClusterState.Deleting || cluster.state === ClusterState.Deleted) {
      throw new ConflictError('cluster_deleting', `the cluster is ${cluster.state}; its audit export can no longer be changed`);
    }
    const managedIdentity = body.managedIdentity === true;
    const checked = checkContainerUrl(body.containerUrl, managedIdentity, {
      blobSuffixes: this.config.AUDIT_EXPORT_BLOB_SUFFIXES.split(','), devEndpoint: this.config.AUDIT_EXPORT_DEV_ENDPOINT, now: new Date(),
    });
    if (!checked.ok) throw new UnprocessableError(checked.code, checked.message, { field: 'containerUrl' });
    if (managedIdentity && !hasAzureIdentity(this.config)) {
      throw new UnprocessableError('managed_identity_unavailable', 'this control plane runs without an Azure identity of its own (local): send the container URL with a SAS instead');
    }
    const access: AuditContainerAccess = managedIdentity ? { containerUrl: checked.containerUrl, credential: azureCredential(this.config) } : { sasUrl: body.containerUrl };
    try {
      await new AuditContainer(access).probe(auditProbeBlobName(cluster.id), JSON.stringify({ probe: true, cluster: cluster.id, at: new Date().toISOString() }));
    } catch (e) {
      if (e instanceof AuditStorageError) throw new UnprocessableError(e.code, `the access check failed, nothing was saved: ${e.message}`, { field: 'containerUrl' });
      throw e;
    }
    await this.exports.configure(cluster, {
      auth: managedIdentity ? 'managed-identity' : 'sas', containerUrl: checked.containerUrl, sasExpiresAt: checked.sasExpiresAt, ...(managedIdentity ? {} : { sasUrl: body.containerUrl }),
    }, caller.userId);
    return this.get(caller, cluster.id);
  }

  async delete(caller: Principal, id: string): Promise<AuditExportView> {
    const cluster = await this.clusters.require(caller, id);
    await this.exports.disable(caller.tenantId, cluster.id, caller.userId);
    return this.get(caller, cluster.id);
  }
}

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { BlobServiceClient, ContainerSASPermissions, SASProtocol, StorageSharedKeyCredential, generateBlobSASQueryParameters, type ContainerClient } from '@azure/storage-blob';
import type { Config, Db } from '../../libs/core/src';
import { SUBSCRIPTION } from './stack';

/** What a customer's SAS is made with: the permissions, the expiry, the key that signs it, the container. */
export interface SasOptions {
  permissions?: string;
  expiresOn?: Date;
  key?: StorageSharedKeyCredential;
  container?: string;
}

/**
 * A container in Azurite standing for the one a customer names for the audit export, and the
 * container SASes the customer would make for it (signed with the development account's key).
 */
export interface CustomerContainer {
  container: ContainerClient;
  /** The development account's shared key (to sign a SAS with another key, use its account name). */
  key: StorageSharedKeyCredential;
  /** The Azurite endpoint the API accepts container URLs under (AUDIT_EXPORT_DEV_ENDPOINT). */
  endpoint: string;
  sasUrl(o?: SasOptions): string;
}

export async function customerContainer(config: Config): Promise<CustomerContainer> {
  const endpoint = config.AUDIT_EXPORT_DEV_ENDPOINT;
  assert.ok(endpoint, 'the test stack names Azurite as the audit export\'s development endpoint');
  const cs = config.AZURE_STORAGE_CONNECTION_STRING;
  const name = /AccountName=([^;]+)/.exec(cs)?.[1];
  const secret = /AccountKey=([^;]+)/.exec(cs)?.[1];
  assert.ok(name && secret, 'the connection string names an account and its key');
  const key = new StorageSharedKeyCredential(name, secret);
  const container = BlobServiceClient.fromConnectionString(cs).getContainerClient(`audit-${randomUUID().slice(0, 8)}`);
  await container.create();
  return {
    container, key, endpoint,
    sasUrl(o = {}) {
      const containerName = o.container ?? container.containerName;
      const q = generateBlobSASQueryParameters({
        containerName, permissions: ContainerSASPermissions.parse(o.permissions ?? 'rac'),
        expiresOn: o.expiresOn ?? new Date(Date.now() + 2 * 3_600_000), protocol: SASProtocol.HttpsAndHttp,
      }, o.key ?? key);
      return `${endpoint}/${containerName}?${q.toString()}`;
    },
  };
}

/** A Running cluster row with no Consul behind it: the audit export reads and writes rows and blobs only. */
export async function exportedCluster(db: Db, tenantId: string, name: string): Promise<string> {
  const id = randomUUID();
  await db.cluster.create({
    data: {
      id, tenantId, subscriptionId: SUBSCRIPTION, resourceGroup: 'rg-audit', managedResourceGroup: `mrg-${name}`, name, region: 'westeurope',
      datacenter: 'dc1', consulVersion: '1.8.7', tier: 'standard', serverCount: 3, state: 'Running', createdBy: 'test',
    },
  });
  return id;
}

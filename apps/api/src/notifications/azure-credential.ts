import { ClientSecretCredential, DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import type { Config } from '../../../../libs/core/src';

/**
 * The control plane's own Azure identity: a client secret when AZURE_TENANT_ID, AZURE_CLIENT_ID
 * and AZURE_CLIENT_SECRET are set (AZURE_AUTHORITY_HOST for sovereign clouds and tests),
 * otherwise DefaultAzureCredential (a managed identity where the control plane runs in Azure).
 * Made lazily by the SDK: nothing is fetched until a token is needed.
 */
export function azureCredential(config: Config): TokenCredential {
  if (config.AZURE_TENANT_ID && config.AZURE_CLIENT_ID && config.AZURE_CLIENT_SECRET) {
    return new ClientSecretCredential(config.AZURE_TENANT_ID, config.AZURE_CLIENT_ID, config.AZURE_CLIENT_SECRET, {
      ...(config.AZURE_AUTHORITY_HOST ? { authorityHost: config.AZURE_AUTHORITY_HOST, disableInstanceDiscovery: true } : {}),
    });
  }
  return new DefaultAzureCredential(config.AZURE_AUTHORITY_HOST ? { authorityHost: config.AZURE_AUTHORITY_HOST } : {});
}

import type { TokenCredential } from '@azure/core-auth';
import { lazyCredential, loadLazily } from './lazy-module';
import type { Config } from './config';

/**
 * The control plane's own Azure identity: a client secret when AZURE_TENANT_ID, AZURE_CLIENT_ID
 * and AZURE_CLIENT_SECRET are set (AZURE_AUTHORITY_HOST for sovereign clouds and tests),
 * a user-assigned managed identity when AZURE_MANAGED_IDENTITY_CLIENT_ID is set, otherwise
 * DefaultAzureCredential (environment, workload identity, managed identity, az CLI).
 * Made, with @azure/identity loaded, at the first token request: nothing is loaded or fetched
 * until a token is needed.
 */
export function azureCredential(config: Config): TokenCredential {
  return lazyCredential(() => credentialOf(config));
}

function credentialOf(config: Config): TokenCredential {
  const { ClientSecretCredential, DefaultAzureCredential, ManagedIdentityCredential } = loadLazily<typeof import('@azure/identity')>('@azure/identity');
  if (config.AZURE_TENANT_ID && config.AZURE_CLIENT_ID && config.AZURE_CLIENT_SECRET) {
    return new ClientSecretCredential(config.AZURE_TENANT_ID, config.AZURE_CLIENT_ID, config.AZURE_CLIENT_SECRET, {
      ...(config.AZURE_AUTHORITY_HOST ? { authorityHost: config.AZURE_AUTHORITY_HOST, disableInstanceDiscovery: true } : {}),
    });
  }
  if (config.AZURE_MANAGED_IDENTITY_CLIENT_ID) return new ManagedIdentityCredential({ clientId: config.AZURE_MANAGED_IDENTITY_CLIENT_ID });
  return new DefaultAzureCredential(config.AZURE_AUTHORITY_HOST ? { authorityHost: config.AZURE_AUTHORITY_HOST } : {});
}

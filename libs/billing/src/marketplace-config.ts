import { lazyCredential, loadLazily, type Config } from '../../core/src';
import { MeteringClient } from './marketplace/client';

/**
 * The metering API client the configuration describes: Entra ID client
 * credentials of the publisher's app registration (loadConfig checked they are
 * set when BILLING_EXPORTER=marketplace). Null when usage goes to files.
 */
export function meteringClientFromConfig(config: Config): MeteringClient | null {
  if (config.BILLING_EXPORTER !== 'marketplace') return null;
  // @azure/identity loads at the first token request (the API never asks one).
  const credential = lazyCredential(() => {
    const { ClientSecretCredential } = loadLazily<typeof import('@azure/identity')>('@azure/identity');
    return new ClientSecretCredential(config.MARKETPLACE_TENANT_ID!, config.MARKETPLACE_CLIENT_ID!, config.MARKETPLACE_CLIENT_SECRET!, {
      ...(config.MARKETPLACE_AUTHORITY_HOST ? { authorityHost: config.MARKETPLACE_AUTHORITY_HOST, disableInstanceDiscovery: true } : {}),
    });
  });
  return new MeteringClient({ baseUrl: config.MARKETPLACE_METERING_URL, credential });
}

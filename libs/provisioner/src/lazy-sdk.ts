import { createRequire } from 'node:module';

const requireLazily = createRequire(__filename);

/**
 * An Azure SDK package, loaded when first needed (a plain require: the same CommonJS copy the
 * rest of the process uses). The API loads the provisioner's index for the Consul client and the
 * PKI; without the ARM, Key Vault and Storage SDKs it carries about 60 MB of RSS less.
 */
export function loadSdk<T>(name: string): T {
  return requireLazily(name) as T;
}

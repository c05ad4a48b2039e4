/**
 * The local cloud's DNS for a process of the control plane: its Key Vaults,
 * https://<name>.vault.localhost:<port>/ (as https://<name>.vault.azure.net/ is
 * Azure's), are this host. Loaded with `--require` into a worker the tests
 * start, or imported by a test that runs the Azure target itself; the vault
 * client (@azure/keyvault-secrets) then runs unchanged, its check that the
 * challenge's resource (https://vault.localhost) is the vault's domain included.
 */
import dns from 'node:dns';

const VAULT_HOST = /\.vault\.localhost$/i;
const original = dns.lookup.bind(dns) as (...args: unknown[]) => void;

type Callback = (err: NodeJS.ErrnoException | null, address?: string | dns.LookupAddress[], family?: number) => void;

(dns as { lookup: unknown }).lookup = function lookup(hostname: string, options: unknown, callback?: Callback): void {
  const cb = (typeof options === 'function' ? options : callback) as Callback;
  const opts = (typeof options === 'object' && options !== null ? options : {}) as dns.LookupOptions;
  if (!VAULT_HOST.test(hostname)) return original(hostname, options, callback);
  if (opts.all) return process.nextTick(cb, null, [{ address: '127.0.0.1', family: 4 }]);
  process.nextTick(cb, null, '127.0.0.1', 4);
};

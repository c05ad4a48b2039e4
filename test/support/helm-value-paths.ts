/** What a key path of a Helm values document holds: a mapping (more keys below) or a value (scalar, list or null). */
export type ValueKind = 'map' | 'value';

/**
 * Every key path of a parsed values document (`global.tls.caCert.secretName`) and what it holds.
 * Lists are values: the chart reads them whole. The same walk makes the chart's path index
 * (test/fixtures/README.md) and reads our generated values, so both are compared alike.
 */
export function valuePaths(doc: unknown, prefix: readonly string[] = [], out = new Map<string, ValueKind>()): Map<string, ValueKind> {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return out;
  for (const [key, value] of Object.entries(doc)) {
    const path = [...prefix, key];
    const isMap = value !== null && typeof value === 'object' && !Array.isArray(value);
    out.set(path.join('.'), isMap ? 'map' : 'value');
    if (isMap) valuePaths(value, path, out);
  }
  return out;
}

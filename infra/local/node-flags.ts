/**
 * The V8 flags the API and the worker run with wherever they run: `npm start`, the benchmarks'
 * processes, and NODE_OPTIONS in the Kubernetes manifests (a test keeps those equal to this).
 *
 * `--max-semi-space-size=4` (MB): V8 lets the young generation's semi-spaces grow to 16 MB each on
 * 64-bit, and the API kept them reserved: 149 MB RSS right after start, 123 MB with 4 MB
 * (measured with VmRSS, 2026-12-07; BENCHMARKS.md has the figures with a load on it). Our
 * requests allocate little per call, so the more frequent scavenges cost less than the memory.
 */
export const SERVICE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];

/**
 * The V8 flags and the environment the API and the worker run with wherever they run: `npm start`,
 * the benchmarks' processes, and the Kubernetes manifests' config.env (a test keeps those equal to
 * these).
 *
 * `--max-semi-space-size=2` (MB): V8 lets the young generation's semi-spaces grow to 16 MB each on
 * 64-bit, and the API kept them reserved: 149 MB RSS right after start, 123 MB with 4 MB
 * (measured with VmRSS, 2026-12-07). With 2 MB and MALLOC_ARENA_MAX=2, after one create: API
 * 154 -> 140 MB, worker 151 -> 141 MB (a burst of 5, 2026-12-07; docs/benchmarks-log.md, session 15).
 * Our requests allocate little per call, so the more frequent scavenges cost less than the memory.
 * (`--optimize-for-size` took both under 140 MB but doubled the hot read's CPU: not used.)
 */
export const SERVICE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];

/**
 * glibc's malloc makes up to 8 arenas per core for the threads that allocate (libuv's pool: crypto,
 * files, DNS) and keeps what each grew to; two are enough for a process whose JavaScript runs on one
 * thread. Read by glibc when the process starts, so it is given in the environment, not set later.
 */
export const SERVICE_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

/**
 * A bare Fastify 5 hello-world, the yardstick for the API's GET throughput
 * (bench/api-throughput.bench.ts starts it as a separate process, like the API).
 *
 *   PORT=<port> node dist/bench/hello-fastify.js
 *
 * Listens on 127.0.0.1 only, answers GET / with {"hello":"world"}, and exits on
 * SIGTERM/SIGINT, or by itself after MAX_LIFETIME_S (default 300) so that it
 * never outlives a benchmark that died.
 */
import Fastify from 'fastify';

async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 0);
  const app = Fastify({ logger: false });
  app.get('/', async () => ({ hello: 'world' }));
  await app.listen({ port, host: '127.0.0.1' });
  const stop = () => {
    void app.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  setTimeout(stop, Number(process.env.MAX_LIFETIME_S ?? 300) * 1000).unref(); // the listening socket keeps us alive
}

main().catch((e: unknown) => {
  process.stderr.write(`hello-fastify failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});

import { ConfigError, loadConfig, requireKeyFile, writePidFile } from '../../../libs/core/src';
import { startWorker } from './worker';

async function main(): Promise<void> {
  const config = loadConfig();
  requireKeyFile(config);
  await startWorker(config);
  writePidFile(config.LOCAL_DIR, config.WORKER_NAME);
}

main().catch((e: unknown) => {
  process.stderr.write(`worker failed to start: ${e instanceof ConfigError ? e.message : (e as Error).stack}\n`);
  process.exit(1);
});

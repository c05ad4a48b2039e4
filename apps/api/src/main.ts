import { Logger } from '@nestjs/common';
import { ConfigError, loadConfig, requireKeyFile, writePidFile } from '../../../libs/core/src';
import { createApiApp } from './app';

async function main(): Promise<void> {
  const config = loadConfig();
  requireKeyFile(config);
  const app = await createApiApp(config);
  await app.listen(config.PORT, config.HOST);
  writePidFile(config.LOCAL_DIR, 'api');
  new Logger('api').log(`listening on http://${config.HOST}:${config.PORT}`);
}

main().catch((e: unknown) => {
  process.stderr.write(`api failed to start: ${e instanceof ConfigError ? e.message : (e as Error).stack}\n`);
  process.exit(1);
});

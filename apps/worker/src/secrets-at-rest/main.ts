import fs from 'node:fs';
import { ConfigError, SecretBox, SecretRepository, closeDb, createDb, loadConfig } from '../../../../libs/core/src';
import { secretsAtRest } from './secrets-at-rest.command';

/** `npm run secrets-at-rest -- <command>`, with the worker's configuration (DATABASE_URL, KEK_FILE). */
async function main(): Promise<number> {
  const config = loadConfig();
  // SecretBox.fromKeyFile would create a fresh key where none is: that opens nothing here.
  if (!fs.existsSync(config.KEK_FILE)) throw new ConfigError(`KEK_FILE: ${config.KEK_FILE} does not exist; run this where the worker runs, with its key file`);
  const db = createDb(config.DATABASE_URL, 1);
  try {
    return await secretsAtRest(process.argv.slice(2), new SecretRepository(db, SecretBox.fromKeyFile(config.KEK_FILE)), (line) => process.stdout.write(`${line}\n`));
  } finally {
    await closeDb(db);
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`secrets-at-rest: ${e instanceof ConfigError ? e.message : (e as Error).message}\n`);
    process.exit(2);
  },
);

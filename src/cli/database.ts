import { loadDatabaseConfig } from '../config';
import { readDevFile } from '../dev-file';

/**
 * The database the CLI works on: DATABASE_URL, or when unset the one DATA_DIR/dev.json records.
 * Read through loadDatabaseConfig (the environment is read in src/config.ts only); throws
 * ConfigError when either variable is invalid.
 */
export async function cliDatabaseUrl(env?: NodeJS.ProcessEnv): Promise<string | undefined> {
  const { databaseUrl, dataDir } = loadDatabaseConfig(env);
  if (databaseUrl) return databaseUrl;
  return (await readDevFile(dataDir))?.database_url;
}

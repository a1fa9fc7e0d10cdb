import path from 'node:path';
import { readDevFile } from '../dev-file';

/** The database the CLI works on: DATABASE_URL, or when unset the one DATA_DIR/dev.json records. */
export async function cliDatabaseUrl(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  if (env.DATABASE_URL) return env.DATABASE_URL;
  const dataDir = path.resolve(env.DATA_DIR || '.data');
  return (await readDevFile(dataDir))?.database_url;
}

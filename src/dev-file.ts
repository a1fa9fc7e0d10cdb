import fs from 'node:fs/promises';
import path from 'node:path';

/**
 * DATA_DIR/dev.json: how to reach a development instance (its URL, the demo API key and the
 * database), for people and for the CLI. Written on each start; readable only by its owner.
 */
export interface DevFile {
  base_url: string;
  api_key: string | null;
  database_url: string;
}

export function devFilePath(dataDir: string): string {
  return path.join(dataDir, 'dev.json');
}

export async function readDevFile(dataDir: string): Promise<DevFile | undefined> {
  try {
    return JSON.parse(await fs.readFile(devFilePath(dataDir), 'utf8')) as DevFile;
  } catch {
    return undefined;
  }
}

export async function writeDevFile(dataDir: string, contents: DevFile): Promise<void> {
  await fs.mkdir(dataDir, { recursive: true });
  await fs.writeFile(devFilePath(dataDir), `${JSON.stringify(contents, null, 2)}\n`, { mode: 0o600 });
}

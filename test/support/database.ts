import { randomBytes } from 'node:crypto';
import { after } from 'node:test';
import postgres from 'postgres';
import { createDatabase, type Database } from '../../src/db/client';
import { TEMPLATE_DATABASE, testEnvironment } from './environment';

export interface TestDatabase extends Database {
  name: string;
  url: string;
}

export function databaseUrl(name: string): string {
  const url = new URL(testEnvironment.postgresUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * A fresh, migrated database of this test file's own, copied from the harness's template; it is
 * closed and dropped when the file's tests are done.
 */
export async function createTestDatabase(options: { max?: number } = {}): Promise<TestDatabase> {
  const name = `test_${randomBytes(6).toString('hex')}`;
  const admin = postgres(testEnvironment.postgresUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE_DATABASE}`);
  } finally {
    await admin.end();
  }
  const url = databaseUrl(name);
  const database = createDatabase(url, options);
  after(async () => {
    await database.close();
    const cleanup = postgres(testEnvironment.postgresUrl, { max: 1, onnotice: () => {} });
    await cleanup.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await cleanup.end();
  });
  return { ...database, name, url };
}

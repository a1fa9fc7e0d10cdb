/** Names the harness (test/run.ts) and the test files agree on. */
export const TEMPLATE_DATABASE = 'analytics_export_template';
export const TEST_BUCKET = 'test-exports';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests with \`npm test\` (test/run.ts starts the servers)`);
  return value;
}

export const testEnvironment = {
  get postgresUrl() {
    return required('TEST_POSTGRES_URL');
  },
  get s3Endpoint() {
    return required('TEST_S3_ENDPOINT');
  },
  get tmpDir() {
    return required('TEST_TMP_DIR');
  },
};

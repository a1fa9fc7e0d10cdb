import path from 'node:path';

/**
 * The service and the CLI as they ship: the bundles `npm run build` writes to dist/ (npm test
 * builds them before any test file runs). The service starts through bin/service, as `npm start`
 * and the image start it; the CLI with plain node.
 */

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
export const SERVICE_COMMAND = path.join(ROOT, 'bin/service');
export const CLI_ENTRY = path.join(ROOT, 'dist/cli/index.js');

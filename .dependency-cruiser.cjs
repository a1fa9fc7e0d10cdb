/**
 * The house rules of the tree's layers, checked by `npm test` (test/architecture.test.ts):
 *
 *   src/api (HTTP) ─┐
 *   tasks/ ─────────┼─▶ src/worker ─▶ src/exports (domain) ─▶ src/db, src/storage
 *   src/cli ────────┘
 *
 * Imports only point down. src/service.ts and src/index.ts wire everything together and may
 * import any layer; nothing imports them back.
 */
const layer = (name) => `^src/${name}/`;
const anyOf = (...paths) => `(${paths.join('|')})`;

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'A module may not import itself back through others: cycles hide which layer owns what.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'db-is-a-lower-layer',
      comment: 'Database statements know nothing of HTTP, the worker, the tasks, the export domain or storage.',
      severity: 'error',
      from: { path: layer('db') },
      to: {
        path: anyOf(
          layer('api'),
          layer('http'),
          layer('worker'),
          layer('exports'),
          layer('storage'),
          layer('observability'),
          layer('cli'),
          '^tasks/',
        ),
      },
    },
    {
      name: 'storage-is-generic',
      comment: 'Storage is S3 in general: no word of exports, the database or anything above.',
      severity: 'error',
      from: { path: layer('storage') },
      to: {
        path: anyOf(
          layer('api'),
          layer('http'),
          layer('worker'),
          layer('exports'),
          layer('db'),
          layer('observability'),
          layer('cli'),
          layer('auth'),
          '^tasks/',
        ),
      },
    },
    {
      name: 'domain-below-its-callers',
      comment: 'The export domain is called by the API, the worker, the tasks and the CLI, never the other way round.',
      severity: 'error',
      from: { path: layer('exports') },
      to: { path: anyOf(layer('api'), layer('http'), layer('worker'), layer('observability'), layer('cli'), '^tasks/') },
    },
    {
      name: 'api-not-worker',
      comment: 'The API imports no task and no worker internals: it reaches exports through the domain and the database.',
      severity: 'error',
      from: { path: layer('api') },
      to: { path: anyOf(layer('worker'), '^tasks/', layer('cli')) },
    },
    {
      name: 'worker-receives-its-tasks',
      comment: 'The worker runtime is given its task list by the service wiring; it never imports tasks/ or the API.',
      severity: 'error',
      from: { path: layer('worker') },
      to: { path: anyOf('^tasks/', layer('api'), layer('cli')) },
    },
    {
      name: 'observability-beside-the-api',
      comment: 'The ops server shares src/http with the API but imports nothing of it.',
      severity: 'error',
      from: { path: layer('observability') },
      to: { path: anyOf(layer('api'), layer('worker'), '^tasks/', layer('cli')) },
    },
    {
      name: 'cli-not-api',
      comment: 'The operator CLI works on the domain and the database, not through the HTTP layer.',
      severity: 'error',
      from: { path: layer('cli') },
      to: { path: anyOf(layer('api'), layer('worker'), '^tasks/') },
    },
    {
      name: 'nothing-imports-the-wiring',
      comment: 'src/service.ts and src/index.ts are the top: they assemble the layers.',
      severity: 'error',
      from: { pathNot: '^src/index\\.ts$' },
      to: { path: '^src/(service|index)\\.ts$' },
    },
    {
      name: 'no-test-code-in-the-service',
      severity: 'error',
      from: { path: anyOf('^src/', '^tasks/') },
      to: { path: '^test/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.json'] },
  },
};

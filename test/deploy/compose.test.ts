import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { createApp } from '../../src/api/app';
import { environmentSchema, loadConfig, type Config } from '../../src/config';
import { createOpsApp } from '../../src/observability/ops-app';
import { createTestApi } from '../support/api';
import { ROOT as root } from '../support/built';

/**
 * Docker does not run on this project's machines, so compose.yaml and the Dockerfile are checked
 * against the code instead: every variable they set is one the configuration knows and accepts,
 * the ports agree, and every health check asks a path the process serves with 200.
 */

const compose = parse(readFileSync(path.join(root, 'compose.yaml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
};
const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
const packageJson = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
const api = await createTestApi();

interface Service {
  image?: string;
  build?: unknown;
  profiles?: string[];
  environment?: Record<string, string | number | boolean>;
  ports?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  entrypoint?: string;
  command?: string;
}

const APP_SERVICES = { app: 'all', api: 'api', worker: 'worker' } as const;

function environmentOf(service: Service): Record<string, string> {
  return Object.fromEntries(Object.entries(service.environment ?? {}).map(([name, value]) => [name, String(value)]));
}

/** The port and path a health check command asks, e.g. fetch('http://127.0.0.1:3000/healthz'). */
function healthTarget(service: Service): { port: number; path: string } {
  const command = (service.healthcheck?.test ?? []).join(' ');
  const match = /http:\/\/(?:127\.0\.0\.1|localhost):(\d+)(\/[\w/]*)/.exec(command);
  assert.ok(match, `a health check that fetches a URL: ${command}`);
  return { port: Number(match[1]), path: match[2]! };
}

/** What the process of that ROLE answers on a path (the API for all/api, the ops server for worker). */
async function statusOf(config: Config, urlPath: string): Promise<number> {
  const context = { ...api.context, config: { ...config, s3: api.context.config.s3 } };
  const app = config.role === 'worker' ? createOpsApp(context) : createApp(context);
  return (await app.request(urlPath)).status;
}

describe('compose.yaml', () => {
  for (const [name, role] of Object.entries(APP_SERVICES)) {
    test(`${name}: every variable is in the configuration schema and parses, ROLE=${role}`, () => {
      const service = compose.services[name];
      assert.ok(service, `service ${name}`);
      const environment = environmentOf(service);
      for (const variable of Object.keys(environment)) {
        assert.ok(variable in environmentSchema, `${name} sets ${variable}, which the configuration does not know`);
      }
      const config = loadConfig(environment);
      assert.equal(config.role, role);
      assert.equal(config.host, '0.0.0.0', 'reachable from outside the container');
      assert.notEqual(config.databaseUrl, undefined, 'a real database, not the embedded one');
      assert.equal(config.embeddedS3, false, 'a real S3 (MinIO), not the embedded one');
    });

    test(`${name}: published port and health check match PORT, and the health check path answers 200`, async () => {
      const service = compose.services[name]!;
      const config = loadConfig(environmentOf(service));
      for (const mapping of service.ports ?? []) {
        const containerPort = Number(String(mapping).split(':').at(-1));
        assert.equal(containerPort, config.port, `${name} publishes ${mapping}`);
      }
      const target = healthTarget(service);
      assert.equal(target.port, config.port);
      assert.equal(await statusOf(config, target.path), 200, `${name} answers ${target.path}`);
      assert.equal(await statusOf(config, '/readyz'), 200);
      assert.equal(await statusOf(config, '/metrics'), 200);
    });
  }

  test('the app reaches the database and the bucket compose creates', () => {
    const postgres = compose.services.postgres!;
    const pgEnv = environmentOf(postgres);
    const minioSetup = compose.services['minio-setup']!;
    for (const name of Object.keys(APP_SERVICES)) {
      const service = compose.services[name]!;
      const config = loadConfig(environmentOf(service));
      const url = new URL(config.databaseUrl!);
      assert.equal(url.hostname, 'postgres');
      assert.equal(decodeURIComponent(url.username), pgEnv.POSTGRES_USER);
      assert.equal(decodeURIComponent(url.password), pgEnv.POSTGRES_PASSWORD);
      assert.equal(url.pathname.slice(1), pgEnv.POSTGRES_DB);
      const endpoint = new URL(config.s3.endpoint!);
      assert.ok(compose.services[endpoint.hostname], `S3 endpoint host ${endpoint.hostname} is a service`);
      assert.match(String(minioSetup.entrypoint), new RegExp(`mc mb [^&]*local/${config.s3.bucket}\\b`), 'the bucket is created');
      assert.equal(service.depends_on?.postgres?.condition, 'service_healthy');
      assert.equal(service.depends_on?.['minio-setup']?.condition, 'service_completed_successfully');
    }
  });

  test('one container by default; the API and the workers separately under the "scaled" profile', () => {
    assert.equal(compose.services.app!.profiles, undefined);
    assert.deepEqual(compose.services.api!.profiles, ['scaled']);
    assert.deepEqual(compose.services.worker!.profiles, ['scaled']);
    assert.equal(compose.services.worker!.ports, undefined, 'workers publish nothing, so they can be scaled');
  });
});

describe('Dockerfile', () => {
  const stages = dockerfile.split('\n').filter((line) => /^FROM\s/i.test(line));
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));

  test('multi-stage, a slim runtime that runs the built service as a non-root user, as npm start does', () => {
    assert.ok(stages.length >= 2, 'multi-stage');
    assert.match(stages.at(-1)!, /slim|alpine|distroless/);
    const user = /^USER\s+(\S+)/m.exec(runtime)?.[1];
    assert.ok(user && user !== 'root' && user !== '0', `runs as ${user}`);
    assert.match(runtime, /^CMD \["bin\/service"\]$/m);
    assert.equal(packageJson.scripts.start, 'bin/service');
    assert.match(dockerfile, /npm run build/, 'the build stage builds dist/');
    assert.match(runtime, /^COPY --from=build \S+ \/app\/dist \.\/dist$/m);
    assert.match(runtime, /^COPY \S+ bin \.\/bin$/m);
    assert.doesNotMatch(runtime, /npm (ci|install)\b/, 'no install in the runtime stage: dependencies come from the build stage');
  });

  test('its ENV parses, and its port and health check match the code', async () => {
    const env: Record<string, string> = {};
    for (const [, body] of runtime.matchAll(/^ENV\s+((?:.*\\\n)*.*)$/gm)) {
      for (const [, name, value] of body!.replace(/\\\n/g, ' ').matchAll(/(\w+)=(\S+)/g)) env[name!] = value!;
    }
    const ours = Object.fromEntries(Object.entries(env).filter(([name]) => name in environmentSchema));
    assert.deepEqual(Object.keys(ours).sort(), ['HOST', 'PORT']);
    const config = loadConfig(ours);
    assert.equal(Number(/^EXPOSE\s+(\d+)/m.exec(runtime)?.[1]), config.port);
    const health = /^HEALTHCHECK[\s\S]*?CMD (.*)$/m.exec(runtime)?.[1] ?? '';
    assert.match(health, /process\.env\.PORT\|\|3000/);
    assert.match(health, /'\/healthz'/);
    assert.equal(await statusOf(config, '/healthz'), 200);
  });
});

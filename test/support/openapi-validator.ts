import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { ApiResponse } from './api';

/**
 * Checks responses against an OpenAPI 3.1 document with a JSON Schema validator that knows
 * nothing of this project: Ajv in its JSON Schema 2020-12 mode (the dialect of OpenAPI 3.1
 * schemas) with ajv-formats for uuid, date-time and uri. For each response: the request matches
 * a documented path and method; its status is documented for that operation; its body is JSON
 * valid against the documented schema (or empty when none is documented); the documented
 * WWW-Authenticate and Retry-After headers are there. It records which operation answered which
 * status, so a test can tell what its flow covered.
 */

const DOCUMENT_ID = 'https://analytics-export.test/openapi.json';
const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

export interface DocumentedOperation {
  operationId: string;
  method: string;
  path: string;
  statuses: string[];
  hasBody: boolean;
}

interface Operation extends DocumentedOperation {
  pattern: RegExp;
  pointer: string;
}

type Json = Record<string, any>;
const escapePointer = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

export function openApiResponseValidator(document: Json) {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  // The document's own fields are not schema keywords: known to Ajv as annotations, so that strict
  // mode still refuses any unknown keyword inside the schemas.
  ajv.addVocabulary([
    'openapi',
    'info',
    'jsonSchemaDialect',
    'servers',
    'tags',
    'security',
    'paths',
    'webhooks',
    'components',
    'externalDocs',
  ]);
  ajv.addSchema(document, DOCUMENT_ID);

  const operations: Operation[] = [];
  for (const [path, item] of Object.entries<Json>(document.paths)) {
    for (const method of METHODS.filter((m) => item[m])) {
      const operation = item[method];
      operations.push({
        operationId: operation.operationId,
        method: method.toUpperCase(),
        path,
        statuses: Object.keys(operation.responses),
        hasBody: operation.requestBody !== undefined,
        pattern: new RegExp(`^${path.replace(/\{\w+\}/g, '[^/]+')}$`),
        pointer: `/paths/${escapePointer(path)}/${method}`,
      });
    }
  }

  /** Follows a local $ref (`#/components/...`) to what it names, with its JSON pointer. */
  const resolve = (pointer: string): { node: Json; pointer: string } => {
    const node = pointer
      .split('/')
      .slice(1)
      .reduce<Json>((at, key) => at[key.replace(/~1/g, '/').replace(/~0/g, '~')], document);
    return typeof node.$ref === 'string' ? resolve(node.$ref.slice(1)) : { node, pointer };
  };

  const covered = new Map<string, Set<string>>();
  const problems: string[] = [];

  return {
    operations: operations as readonly DocumentedOperation[],
    /** What was seen of each operation: operationId -> statuses. */
    covered,
    /** Every problem found so far, one line each. */
    problems,
    check(method: string, url: string, response: ApiResponse): void {
      const path = new URL(url, 'http://api.test').pathname;
      const what = `${method} ${url} -> ${response.status}`;
      const operation = operations.find((o) => o.method === method && o.pattern.test(path));
      if (!operation) {
        problems.push(`${what}: no documented operation`);
        return;
      }
      const status = String(response.status);
      if (!operation.statuses.includes(status)) {
        problems.push(`${what}: status not documented for ${operation.operationId}`);
        return;
      }
      let seen = covered.get(operation.operationId);
      if (!seen) {
        seen = new Set();
        covered.set(operation.operationId, seen);
      }
      seen.add(status);
      const documented = resolve(`${operation.pointer}/responses/${status}`);
      for (const header of Object.keys(documented.node.headers ?? {})) {
        if (header !== 'Link' && !response.headers.has(header)) problems.push(`${what}: no ${header} header`);
      }
      if (!documented.node.content) {
        if (response.text !== '') problems.push(`${what}: a body where none is documented`);
        return;
      }
      if (!/^application\/json/.test(response.headers.get('content-type') ?? '')) {
        problems.push(`${what}: Content-Type ${response.headers.get('content-type')}, not JSON`);
        return;
      }
      const validate = ajv.getSchema(`${DOCUMENT_ID}#${documented.pointer}/content/application~1json/schema`)!;
      if (!validate(response.body)) {
        problems.push(`${what}: ${ajv.errorsText(validate.errors)} in ${response.text.slice(0, 300)}`);
      }
    },
  };
}

import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { formatUrl } from '@aws-sdk/core/util';
import { getSignedUrl, S3RequestPresigner } from '@aws-sdk/s3-request-presigner';
import { getEndpointFromInstructions } from '@smithy/core/endpoints';
import type { HttpRequest } from '@smithy/types';

/** Objects in a bucket: signed download links, deletion, listing. */

export const DOWNLOAD_URL_TTL_SECONDS = 3600;

/**
 * A GET URL for the object, signed now and valid for one hour from the signing time. The
 * signature's X-Amz-Date has whole seconds only, so the link is signed with `now` truncated to the
 * second and `expires` is counted from that same instant: it is the link's real expiry.
 *
 * getSignedUrl runs the client's whole middleware stack (endpoint rules, retry, user agent...)
 * on every call, which was most of the CPU of GET /analytics/exports/{id}/ (npm run bench). The
 * request it signs differs from key to key only in its path, so the stack runs once per client
 * and bucket to build a template request, and each URL is then the template with the key's path,
 * signed by the same S3RequestPresigner getSignedUrl uses. Keys that would need escaping (never
 * the service's: its object keys are ASCII letters, digits, `_`, `-`, `.` and `/`) take getSignedUrl itself.
 * A test checks that both give the same URL, byte for byte.
 */
export async function presignDownload(
  client: S3Client,
  bucket: string,
  key: string,
  signingTime = new Date(),
): Promise<{ url: string; expires: Date }> {
  const now = new Date(Math.floor(signingTime.getTime() / 1000) * 1000);
  const expires = new Date(now.getTime() + DOWNLOAD_URL_TTL_SECONDS * 1000);
  if (!PLAIN_KEY.test(key)) return { url: await presignSlowly(client, bucket, key, now), expires };
  const template = await presignTemplate(client, bucket);
  const request = template.clone();
  request.path = template.prefix + key;
  const signed = await template.presigner.presign(request, {
    expiresIn: DOWNLOAD_URL_TTL_SECONDS,
    signingDate: now,
    signingRegion: template.signingRegion,
    signingService: template.signingService,
  });
  return { url: formatUrl(signed), expires };
}

/** Keys whose path needs no escaping at all. */
const PLAIN_KEY = /^[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;
const TEMPLATE_KEY = 'presign-template';

/** The SDK's own presigning: for keys the fast path does not take, and for the tests. */
export function presignSlowly(client: S3Client, bucket: string, key: string, now: Date): Promise<string> {
  return getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: key }), {
    expiresIn: DOWNLOAD_URL_TTL_SECONDS,
    signingDate: now,
  });
}

interface Template {
  clone(): HttpRequest;
  /** The path up to the key, e.g. "/bucket/" (path-style) or "/" (virtual-hosted). */
  prefix: string;
  presigner: S3RequestPresigner;
  signingRegion: string | undefined;
  signingService: string | undefined;
}

const templates = new WeakMap<S3Client, Map<string, Promise<Template>>>();

function presignTemplate(client: S3Client, bucket: string): Promise<Template> {
  let byBucket = templates.get(client);
  if (!byBucket) {
    byBucket = new Map();
    templates.set(client, byBucket);
  }
  let template = byBucket.get(bucket);
  if (!template) {
    template = buildTemplate(client, bucket);
    template.catch(() => byBucket.delete(bucket));
    byBucket.set(bucket, template);
  }
  return template;
}

/**
 * Runs getSignedUrl once with a middleware in front of its signer that captures the request (as
 * getSignedUrl's own interceptor sees it) and the signing region and service.
 */
async function buildTemplate(client: S3Client, bucket: string): Promise<Template> {
  let captured: { request: HttpRequest; region?: string; service?: string } | undefined;
  const stack = client.middlewareStack.clone();
  stack.addRelativeTo(
    (_next: unknown, context: Record<string, unknown>) => async (args: { request: unknown }) => {
      const request = args.request as HttpRequest;
      delete request.headers['amz-sdk-invocation-id'];
      delete request.headers['amz-sdk-request'];
      delete request.headers['x-amz-user-agent'];
      captured = { request, region: context.signing_region as string | undefined, service: context.signing_service as string | undefined };
      return { response: {}, output: { $metadata: {} } };
    },
    { name: 'presignTemplateCapture', relation: 'before', toMiddleware: 'awsAuthMiddleware', override: true },
  );
  const command = new GetObjectCommand({ Bucket: bucket, Key: TEMPLATE_KEY });
  await command.resolveMiddleware(stack as never, client.config, {})({ input: command.input } as never);
  if (!captured?.request.path.endsWith(`/${TEMPLATE_KEY}`)) throw new Error('could not build the presign template');
  const { request } = captured;
  // As getSignedUrl does: the signing region of the resolved endpoint's auth scheme.
  const endpoint = await getEndpointFromInstructions(command.input, GetObjectCommand, client.config as never);
  const authScheme = (
    endpoint.properties as
      | { authSchemes?: Array<{ name?: string; signingRegion?: string; signingRegionSet?: string[]; signingName?: string }> }
      | undefined
  )?.authSchemes?.[0];
  const region = authScheme?.name === 'sigv4a' ? authScheme.signingRegionSet?.join(',') : authScheme?.signingRegion;
  const presigner = new S3RequestPresigner({ ...client.config, signingName: authScheme?.signingName, region: async () => region } as never);
  return {
    // The signer copies the request again before it changes it; headers and query are ours to fill.
    clone: () => ({ ...request, headers: { ...request.headers }, query: { ...request.query } }),
    prefix: request.path.slice(0, -TEMPLATE_KEY.length),
    presigner,
    signingRegion: captured.region ?? region,
    signingService: captured.service,
  };
}

/** A small object written in one request. */
export async function putObject(
  client: S3Client,
  bucket: string,
  key: string,
  body: string,
  headers: { contentType: string; contentDisposition?: string },
): Promise<void> {
  await client.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: key,
      Body: body,
      ContentType: headers.contentType,
      ContentDisposition: headers.contentDisposition,
    }),
  );
}

export async function deleteObject(client: S3Client, bucket: string, key: string): Promise<void> {
  await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}

/** The objects under `prefix`, a page (up to 1,000) at a time. */
export async function* listObjectPages(
  client: S3Client,
  bucket: string,
  prefix: string,
): AsyncGenerator<Array<{ key: string; lastModified: Date | undefined }>> {
  let continuationToken: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: continuationToken }));
    yield (page.Contents ?? []).flatMap((object) => (object.Key ? [{ key: object.Key, lastModified: object.LastModified }] : []));
    continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (continuationToken);
}

/**
 * Deletes each of `keys`, one request each: a key that cannot be deleted is reported in `failed`
 * (with why) and never stops the others.
 */
export async function deleteObjects(
  client: S3Client,
  bucket: string,
  keys: Iterable<string>,
): Promise<{ deleted: number; failed: Array<{ key: string; error: unknown }> }> {
  let deleted = 0;
  const failed: Array<{ key: string; error: unknown }> = [];
  for (const key of keys) {
    try {
      await deleteObject(client, bucket, key);
      deleted++;
    } catch (error) {
      failed.push({ key, error });
    }
  }
  return { deleted, failed };
}

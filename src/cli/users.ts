import { issueApiKey } from '../auth/api-keys';
import { rotateWebhookSecret, webhookSecretKey } from '../auth/webhook-secrets';
import { loadWebhookKeyConfig } from '../config';
import type { Queryable } from '../db/client';
import { ACCOUNT_TYPES, type AccountType } from '../db/schema';
import { revokeApiKeys } from '../db/statements/api-keys';
import { findUserByEmail, insertUser, listUsers, lockUser } from '../db/statements/users';
import { assertExists, command, CommandError, NotFoundError, required, UsageError, uuidOption } from './command';

/** Creates a user and their first API key, which is printed once and stored only hashed. */
export const usersCreate = command({
  usage: 'users create --email EMAIL --account-type admin|partner|customer [--partner ID] [--customer ID]',
  summary: 'Create a user and their first API key, printed this once.',
  options: { email: { type: 'string' }, 'account-type': { type: 'string' }, partner: { type: 'string' }, customer: { type: 'string' } },
  parse({ values }) {
    const email = required(values, 'email');
    if (!/^[^\s@]+@[^\s@]+$/.test(email) || email.length > 254) throw new UsageError('--email must be an email address');
    const accountType = required(values, 'account-type') as AccountType;
    if (!ACCOUNT_TYPES.includes(accountType)) throw new UsageError(`--account-type must be one of ${ACCOUNT_TYPES.join(', ')}`);
    const partnerId = uuidOption(values, 'partner') ?? null;
    const customerId = uuidOption(values, 'customer') ?? null;
    if (accountType === 'admin' && (partnerId || customerId)) throw new UsageError('an admin belongs to no partner or customer');
    if (accountType === 'partner' && (!partnerId || customerId)) throw new UsageError('a partner user needs --partner (and no --customer)');
    if (accountType === 'customer' && (!customerId || partnerId))
      throw new UsageError('a customer user needs --customer (and no --partner)');
    return { email, accountType, partnerId, customerId };
  },
  async run({ email, accountType, partnerId, customerId }, sql) {
    if (partnerId) await assertExists(sql, 'partners', partnerId);
    if (customerId) await assertExists(sql, 'customers', customerId);

    return sql.begin(async (tx) => {
      if (await findUserByEmail(tx, email)) throw new CommandError(`a user with email ${email} already exists`);
      const id = await insertUser(tx, { email, accountType, partnerId, customerId });
      const apiKey = await issueApiKey(tx, id, 'cli');
      return { id, api_key: apiKey };
    });
  },
});

/** `--user ID`, required and a uuid. */
function userOption(values: Record<string, string | undefined>): string {
  required(values, 'user');
  return uuidOption(values, 'user')!;
}

/**
 * A command on one user's keys: `--user ID`, then, in one transaction holding the user's row (so
 * that a rotation and a revocation of one user run one after the other), every key of theirs
 * revoked and `then` run. An unknown user is an error.
 */
function keyCommand<T>(usage: string, summary: string, then: (tx: Queryable, userId: string) => Promise<T>) {
  return command({
    usage,
    summary,
    options: { user: { type: 'string' } },
    parse: ({ values }) => ({ userId: userOption(values) }),
    run: ({ userId }, sql) =>
      sql.begin(async (tx) => {
        if (!(await lockUser(tx, userId))) throw new NotFoundError('user', userId);
        await revokeApiKeys(tx, userId);
        return then(tx, userId);
      }),
  });
}

/** Revokes every key of the user and issues a new one, printed once: the old keys answer 401 at once. */
export const usersRotateKey = keyCommand(
  'users rotate-key --user ID',
  'Revoke every key of a user and issue a new one, printed this once.',
  async (tx, userId) => ({
    id: userId,
    api_key: await issueApiKey(tx, userId, 'cli'),
  }),
);

/** Revokes every key of the user: they cannot use the API until a key is rotated in. */
export const usersRevokeKey = keyCommand(
  'users revoke-key --user ID',
  'Revoke every key of a user, until rotate-key issues a new one.',
  async (_tx, userId) => ({ id: userId, revoked: true }),
);

/** Every user, oldest first, with when any of their keys was last used; never a key or its hash. */
export const usersList = command({
  usage: 'users list',
  summary: 'List every user, oldest first, with the last use of their keys (never a key).',
  options: {},
  parse: () => ({}),
  run: (_input, sql) => listUsers(sql),
});

/**
 * Creates the user's webhook signing secret, or replaces it, and prints it once. It is stored
 * encrypted with the key the service uses (WEBHOOK_SECRET_KEY, or the key file under DATA_DIR).
 */
export const usersWebhookSecret = command({
  usage: 'users webhook-secret --user ID',
  summary: "Create or replace the user's webhook signing secret, printed this once.",
  options: { user: { type: 'string' } },
  parse: ({ values }) => ({ userId: userOption(values) }),
  async run({ userId }, sql) {
    const { secretKey, dataDir } = loadWebhookKeyConfig();
    const key = await webhookSecretKey(secretKey, dataDir);
    return sql.begin(async (tx) => {
      if (!(await lockUser(tx, userId))) throw new NotFoundError('user', userId);
      return { id: userId, secret: await rotateWebhookSecret(tx, key, userId) };
    });
  },
});

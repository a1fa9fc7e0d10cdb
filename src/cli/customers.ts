import { insertCustomer } from '../db/statements/tenants';
import { assertExists, command, required, UsageError, uuidOption } from './command';

export const customersCreate = command({
  usage: 'customers create --partner ID --name NAME',
  summary: 'Create a customer of a partner; prints its id.',
  options: { partner: { type: 'string' }, name: { type: 'string' } },
  parse({ values }) {
    const partnerId = uuidOption(values, 'partner');
    if (!partnerId) throw new UsageError('--partner is required');
    return { partnerId, name: required(values, 'name') };
  },
  async run({ partnerId, name }, sql) {
    await assertExists(sql, 'partners', partnerId);
    return { id: await insertCustomer(sql, partnerId, name) };
  },
});

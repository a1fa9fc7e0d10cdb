import { insertPartner } from '../db/statements/tenants';
import { command, required } from './command';

export const partnersCreate = command({
  usage: 'partners create --name NAME',
  summary: 'Create a partner; prints its id.',
  options: { name: { type: 'string' } },
  parse: ({ values }) => ({ name: required(values, 'name') }),
  async run({ name }, sql) {
    return { id: await insertPartner(sql, name) };
  },
});

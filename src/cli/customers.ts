import { assertExists, command, required, UsageError, uuidOption } from './command';

export const customersCreate = command({
  usage: 'customers create --partner ID --name NAME',
  options: { partner: { type: 'string' }, name: { type: 'string' } },
  parse({ values }) {
    const partnerId = uuidOption(values, 'partner');
    if (!partnerId) throw new UsageError('--partner is required');
    return { partnerId, name: required(values, 'name') };
  },
  async run({ partnerId, name }, sql) {
    await assertExists(sql, 'partners', partnerId);
    const [row] = await sql<{ id: string }[]>`INSERT INTO customers (partner_id, name) VALUES (${partnerId}, ${name}) RETURNING id`;
    return { id: row!.id };
  },
});

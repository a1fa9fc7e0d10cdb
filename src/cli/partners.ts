import { command, required } from './command';

export const partnersCreate = command({
  usage: 'partners create --name NAME',
  options: { name: { type: 'string' } },
  parse: ({ values }) => ({ name: required(values, 'name') }),
  async run({ name }, sql) {
    const [row] = await sql<{ id: string }[]>`INSERT INTO partners (name) VALUES (${name}) RETURNING id`;
    return { id: row!.id };
  },
});

import { defineConfig } from 'drizzle-kit';

// `npm run db:generate` turns changes to src/db/schema.ts into a new SQL migration under drizzle/.
// Behaviour drizzle cannot express (the export state machine, SQL functions) is in hand-written
// migrations made with `npx drizzle-kit generate --custom --name <what>`.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema.ts',
  out: './drizzle',
});

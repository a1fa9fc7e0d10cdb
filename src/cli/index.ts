import { parseArgs } from 'node:util';
import { createDatabase } from '../db/client';
import { NotFoundError, UsageError, type Command } from './command';
import { customersCreate } from './customers';
import { cliDatabaseUrl } from './database';
import { demoData, WRITERS } from './demo-data';
import { exportsSql } from './exports-sql';
import { exportsCancel } from './exports-cancel';
import { exportsList } from './exports-list';
import { exportsRetry } from './exports-retry';
import { partnersCreate } from './partners';
import { usersCreate, usersList, usersRevokeKey, usersRotateKey, usersWebhookSecret } from './users';

/**
 * `npm run --silent cli -- <command> [options]`: operator commands on the service's database.
 * Results go to stdout (JSON); errors to stderr. Exit 0 on success (and for --help, which prints
 * on stdout), 2 on bad arguments (with a usage line), 3 when an id names nothing (`no <thing>
 * with id <id>`), 1 when the command fails otherwise. Each command is one file in this folder.
 */

const COMMANDS: Record<string, Command> = {
  'partners create': partnersCreate,
  'customers create': customersCreate,
  'users create': usersCreate,
  'users list': usersList,
  'users rotate-key': usersRotateKey,
  'users revoke-key': usersRevokeKey,
  'users webhook-secret': usersWebhookSecret,
  'demo-data': demoData,
  'exports sql': exportsSql,
  'exports list': exportsList,
  'exports cancel': exportsCancel,
  'exports retry': exportsRetry,
};

const HELP = new Set(['--help', '-h']);
/** The exit code of an id that names nothing, the same for every command. */
const NOT_FOUND = 3;

/** The commands whose words start with `words` (all of them for none). */
function commandsUnder(words: string[]): Command[] {
  return Object.entries(COMMANDS)
    .filter(([name]) => words.every((word, i) => name.split(' ')[i] === word))
    .map(([, command]) => command);
}

/** The usage of the CLI: each command's usage line with its summary. */
function usage(commands: Command[] = Object.values(COMMANDS)): string {
  return [
    'usage: cli <command> [options]',
    '       cli <command> --help',
    'commands:',
    ...commands.map((c) => `  ${c.usage}\n      ${c.summary}`),
  ].join('\n');
}

function commandHelp(command: Command): string {
  return `usage: cli ${command.usage}\n${command.summary}`;
}

async function main(argv: string[]): Promise<number> {
  const name = Object.keys(COMMANDS).find((words) => words.split(' ').every((word, i) => argv[i] === word));
  const help = argv.some((arg) => HELP.has(arg)) || (!name && argv[0] === 'help');
  if (!name) {
    // `cli --help`, `cli help`, or `cli exports --help` (the commands of that group).
    const group = commandsUnder(argv.filter((arg) => !HELP.has(arg) && arg !== 'help'));
    if (help && group.length > 0) {
      process.stdout.write(`${usage(group)}\n`);
      return 0;
    }
    process.stderr.write(`${argv.length ? `unknown command: ${argv.slice(0, 2).join(' ')}\n` : ''}${usage()}\n`);
    return 2;
  }
  const command = COMMANDS[name]!;
  if (help) {
    process.stdout.write(`${commandHelp(command)}\n`);
    return 0;
  }
  const fail = (message: string) => {
    process.stderr.write(`error: ${message}\nusage: cli ${command.usage}\n`);
    return 2;
  };

  let input: unknown;
  try {
    const parsed = parseArgs({ args: argv.slice(name.split(' ').length), options: command.options, strict: true, allowPositionals: true });
    if (parsed.positionals.length !== (command.positionals ?? 0)) {
      throw new UsageError(`expected ${command.positionals ?? 0} argument(s), got ${parsed.positionals.length}`);
    }
    input = command.parse({ values: parsed.values as Record<string, string | undefined>, positionals: parsed.positionals });
  } catch (error) {
    // parseArgs reports unknown options and missing values with a TypeError of its own.
    return fail(error instanceof Error ? error.message : String(error));
  }

  let url: string | undefined;
  try {
    url = await cliDatabaseUrl();
  } catch (error) {
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
  if (!url) {
    process.stderr.write('error: no database: set DATABASE_URL, or start the service once so that DATA_DIR/dev.json names one\n');
    return 1;
  }
  const database = createDatabase(url, { max: WRITERS });
  try {
    const result = await command.run(input, database.sql);
    process.stdout.write(typeof result === 'string' ? `${result}\n` : `${JSON.stringify(result)}\n`);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) return fail(error.message);
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`error: ${message}\n`);
    return error instanceof NotFoundError ? NOT_FOUND : 1;
  } finally {
    await database.close();
  }
}

process.exitCode = await main(process.argv.slice(2));

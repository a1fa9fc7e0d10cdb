import type { ParseArgsConfig } from 'node:util';
import type { Sql } from '../db/client';
import { tenantExists } from '../db/statements/tenants';
import { isUuid } from '../uuid';

export interface Args {
  values: Record<string, string | undefined>;
  positionals: string[];
}

/**
 * One CLI subcommand: its usage line, what it does in a sentence (both for --help), its options
 * (node:util parseArgs), how it checks its arguments (before any database is opened; UsageError
 * means exit 2) and what it does. run() returns what to print on stdout: a string as it is,
 * anything else as one line of JSON.
 */
export interface Command<Input = unknown> {
  usage: string;
  summary: string;
  options: NonNullable<ParseArgsConfig['options']>;
  /** How many positional arguments follow the command words. */
  positionals?: number;
  parse(args: Args): Input;
  run(input: Input, sql: Sql): Promise<unknown>;
}

/** Keeps each command's input type while the registry holds them all. */
export function command<Input>(definition: Command<Input>): Command {
  return definition as Command;
}

/** Bad arguments: exit 2 with the usage line. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export function required(values: Record<string, string | undefined>, name: string): string {
  const value = values[name]?.trim();
  if (!value) throw new UsageError(`--${name} is required`);
  return value;
}

export function uuidOption(values: Record<string, string | undefined>, name: string): string | undefined {
  const value = values[name]?.trim();
  if (value === undefined) return undefined;
  if (!isUuid(value)) throw new UsageError(`--${name} must be a uuid`);
  return value;
}

/** A positional id: a uuid, or a UsageError naming what it should be. */
export function uuidArgument(value: string, what: string): string {
  const id = value.trim();
  if (!isUuid(id)) throw new UsageError(`ID must be the uuid of ${what}`);
  return id;
}

export function integerOption(
  values: Record<string, string | undefined>,
  name: string,
  min: number,
  max: number,
  fallback: number,
): number {
  const value = values[name];
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value.trim()) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}`);
  }
  return Number(value);
}

/** A runtime failure the user can act on (exit 1, message on stderr, no stack trace). */
export class CommandError extends Error {
  override name = 'CommandError';
}

/** What a command names by id: the word its "not found" message uses. */
export type Thing = 'partner' | 'customer' | 'user' | 'export';

/** An id that names nothing: exit 3, with the one wording every command uses. */
export class NotFoundError extends CommandError {
  override name = 'NotFoundError';
  constructor(thing: Thing, id: string) {
    super(`no ${thing} with id ${id}`);
  }
}

/** Looks an id up in a table, or fails with NotFoundError. */
export async function assertExists(sql: Sql, table: 'partners' | 'customers', id: string): Promise<void> {
  if (!(await tenantExists(sql, table, id))) throw new NotFoundError(table === 'partners' ? 'partner' : 'customer', id);
}

import { type Config, ConfigError, loadConfig } from './config';
import { createLogger } from './logger';
import { type RunningService, StartupError, startService } from './service';

/** `npm start`: the service in one process, stopped cleanly by SIGTERM or SIGINT. */

let config: Config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}
const logger = createLogger(config.logLevel, config.logFormat);

// The handlers are installed before anything starts: a signal that arrives while the worker is
// already taking jobs but start-up has not returned must still drain it, not kill the process.
let service: RunningService | undefined;
let stopping = false;
const stop = (running: RunningService) =>
  running.stop().then(
    () => {
      logger.info('stopped');
      process.exit(0);
    },
    (error: unknown) => {
      logger.error({ err: error }, 'shutdown failed');
      process.exit(1);
    },
  );
const shutdown = (signal: NodeJS.Signals) => {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down');
  if (service) void stop(service);
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

try {
  const started = Date.now();
  service = await startService(config, logger);
  if (stopping) {
    void stop(service);
  } else {
    logger.info({ role: config.role, ms: Date.now() - started }, 'ready');
  }
  if (!stopping && service.baseUrl) {
    process.stderr.write(`\nAnalytics Export service ready at ${service.baseUrl}\n`);
    if (service.demoApiKey) {
      process.stderr.write(
        `Demo API key: ${service.demoApiKey}\n` +
          `  curl -H "Authorization: Bearer ${service.demoApiKey}" ${service.baseUrl}/analytics/exports/\n`,
      );
    }
    process.stderr.write('\n');
  }
} catch (error) {
  if (error instanceof StartupError) {
    logger.fatal(error.message);
    process.stderr.write(`cannot start: ${error.message}\n`);
  } else {
    logger.fatal({ err: error }, 'start-up failed');
  }
  process.exit(1);
}

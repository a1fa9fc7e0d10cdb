import { ConfigError, loadConfig } from './config';
import { createLogger } from './logger';
import { StartupError, startService } from './service';

/** `npm start`: the service in one process, stopped cleanly by SIGTERM or SIGINT. */

let config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}
const logger = createLogger(config.logLevel, config.logFormat);

try {
  const started = Date.now();
  const service = await startService(config, logger);
  logger.info({ role: config.role, ms: Date.now() - started }, 'ready');
  if (service.baseUrl) {
    process.stderr.write(`\nAnalytics Export service ready at ${service.baseUrl}\n`);
    if (service.demoApiKey) {
      process.stderr.write(
        `Demo API key: ${service.demoApiKey}\n` +
          `  curl -H "Authorization: Bearer ${service.demoApiKey}" ${service.baseUrl}/analytics/exports/\n`,
      );
    }
    process.stderr.write('\n');
  }

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    service.stop().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
} catch (error) {
  if (error instanceof StartupError) {
    logger.fatal(error.message);
    process.stderr.write(`cannot start: ${error.message}\n`);
  } else {
    logger.fatal({ err: error }, 'start-up failed');
  }
  process.exit(1);
}

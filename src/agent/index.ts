/**
 * agent: the long-running service an operator installs on each server. It reads one YAML config
 * (validated whole at start), opens or creates the repository, and backs up its sources at start
 * and on their cron schedules, one at a time; SIGTERM or SIGINT cancels the running backup at a
 * safe point. A composition root: it alone (with cli/) instantiates stores.
 */
export * from './config.js';
export * from './agent.js';
export * from './host-env.js';

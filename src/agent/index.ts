/**
 * agent: the long-running service an operator installs on each server, and its composition root.
 * It reads one YAML config (validated whole at start), opens or creates the repository and its
 * key, creates missing API token files, opens the job history, and wires the job queue, the
 * scheduler, the change journals and the HTTP API together; SIGTERM stops it at a safe point and
 * SIGHUP reloads its config. It alone (with cli/) instantiates stores and reads process state.
 */
export * from './config.js';
export * from './agent.js';
export * from './agent-status.js';
export * from './host-env.js';
export * from './secrets.js';

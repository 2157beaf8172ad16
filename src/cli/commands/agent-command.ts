import type { Command } from 'commander';
import { PROGRAM, VERSION } from '../version.js';

/** Registers `cairn agent`. */
export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description('run the backup agent as a service: backups on schedules and on changes, job history, and the HTTP API')
    .requiredOption('-c, --config <file>', 'the agent config (YAML)')
    .option('--check-config', 'only validate the config file, print every problem, and exit (2 when it is invalid)')
    .action(async (o: { config: string; checkConfig?: boolean }) => {
      // imported here, not at the top: the agent's server stack (Fastify, pino, libsql, chokidar,
      // the scheduler) costs every other command ~25 MiB of RSS and ~0.1 s of start-up
      const { loadAgentConfig } = await import('../../agent/config.js');
      const { SHUTDOWN_DEADLINE_MS, createAgentLogger, startAgent } = await import('../../agent/agent.js');
      const config = await loadAgentConfig(o.config);
      if (o.checkConfig) {
        process.stdout.write(`${config.file}: ok (${config.sources.length} source${config.sources.length === 1 ? '' : 's'})\n`);
        return;
      }
      const logger = createAgentLogger(config.logLevel);
      const agent = await startAgent({ config, logger, program: PROGRAM, version: VERSION });
      let stopping = false;
      const stop = (sig: string): void => {
        if (stopping) {
          // a second signal: the operator does not want to wait for the safe point
          logger.warn({ signal: sig }, 'second signal: exiting now; the running job is marked interrupted at the next start');
          logger.flush(() => process.exit(130));
        }
        stopping = true;
        // the agent stops within the deadline; should something still hang (a read stuck on a
        // dead network mount), exit anyway: the job is marked interrupted at the next start
        setTimeout(() => {
          logger.error({ deadlineMs: SHUTDOWN_DEADLINE_MS }, 'could not stop in time: exiting now');
          logger.flush(() => process.exit(1));
        }, SHUTDOWN_DEADLINE_MS - 300).unref();
        void agent.stop(sig);
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGHUP', () => void agent.reload().catch((err: unknown) => logger.error({ err }, 'config reload failed')));
      await agent.stopped;
      // the log is written asynchronously: let it drain, then exit, so nothing (a read stuck on a
      // dead mount, say) keeps a stopped agent alive
      await new Promise<void>((resolve) => logger.flush(() => resolve()));
      process.exit(0);
    });
}

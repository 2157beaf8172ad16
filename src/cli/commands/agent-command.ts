import type { Command } from 'commander';
import { loadAgentConfig } from '../../agent/config.js';
import { createAgentLogger, startAgent } from '../../agent/agent.js';
import { PROGRAM, VERSION } from '../version.js';

/** Registers `cairn agent`. */
export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description('run the backup agent as a service: backups on schedules and on changes, job history, and the HTTP API')
    .requiredOption('-c, --config <file>', 'the agent config (YAML)')
    .option('--check-config', 'only validate the config file, print every problem, and exit (2 when it is invalid)')
    .action(async (o: { config: string; checkConfig?: boolean }) => {
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
          logger.flush();
          process.exit(130);
        }
        stopping = true;
        void agent.stop(sig);
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGHUP', () => void agent.reload());
      await agent.stopped;
      logger.flush();
    });
}

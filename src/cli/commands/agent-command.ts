import type { Command } from 'commander';
import { loadAgentConfig } from '../../agent/config.js';
import { startAgent } from '../../agent/agent.js';
import { PROGRAM } from '../version.js';

/** Registers `cairn agent`. */
export function registerAgent(program: Command): void {
  program
    .command('agent')
    .description('run the backup agent as a service: back up the configured sources at start and on their schedules')
    .requiredOption('-c, --config <file>', 'the agent config (YAML)')
    .option('--check-config', 'only validate the config file, print every problem, and exit (2 when it is invalid)')
    .action(async (o: { config: string; checkConfig?: boolean }) => {
      const config = await loadAgentConfig(o.config);
      if (o.checkConfig) {
        process.stdout.write(`${config.file}: ok (${config.sources.length} source${config.sources.length === 1 ? '' : 's'})\n`);
        return;
      }
      const agent = await startAgent({ config, program: PROGRAM });
      const stop = (sig: string): void => void agent.stop(sig);
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
      await agent.stopped;
    });
}

import { Command, CommanderError } from 'commander';
import { CairnError } from '../core/errors.js';
import { registerAgent } from './commands/agent-command.js';
import { registerBackup } from './commands/backup-command.js';
import { registerCheck } from './commands/check-command.js';
import { registerRepoCommands } from './commands/repo-commands.js';
import { registerRestore } from './commands/restore-command.js';
import { registerSnapshotCommands } from './commands/snapshot-commands.js';
import type { GlobalOptions } from './context.js';
import { ExitCode, exitCodeFor } from './exit-codes.js';
import { describeError } from './output.js';
import { VERSION } from './version.js';

/** Builds the `cairn` command line. */
export function buildProgram(signal: AbortSignal): Command {
  const program = new Command('cairn')
    .version(VERSION)
    .description('cairn: incremental, deduplicated, encrypted backups')
    .option('-r, --repo <path>', 'repository location (or CAIRN_REPO)')
    .option('--password-file <file>', 'file holding the repository password (or CAIRN_PASSWORD_FILE; or set CAIRN_PASSWORD)')
    .option('--key-file <file>', 'key file that unlocks the repository (or CAIRN_KEY_FILE)')
    .option('--json', 'print machine-readable JSON')
    .option('-q, --quiet', 'no progress output')
    .showHelpAfterError()
    .exitOverride();
  const globals = (): GlobalOptions => program.opts<GlobalOptions>();
  registerRepoCommands(program, globals);
  registerBackup(program, globals, signal);
  registerRestore(program, globals, signal);
  registerSnapshotCommands(program, globals, signal);
  registerCheck(program, globals, signal);
  registerAgent(program);
  for (const c of program.commands) c.exitOverride().showHelpAfterError();
  return program;
}

/** Runs the CLI on `argv` and returns the exit code; errors are printed, never thrown. */
export async function runCli(argv: readonly string[], signal: AbortSignal): Promise<number> {
  const program = buildProgram(signal);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return ExitCode.ok;
      return ExitCode.usage;
    }
    if (signal.aborted) {
      process.stderr.write('interrupted: nothing was lost; what was uploaded is reused by the next run\n');
      return 130;
    }
    process.stderr.write(describeError(err) + '\n');
    if (!(err instanceof CairnError) && process.env.CAIRN_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
    return exitCodeFor(err);
  }
}

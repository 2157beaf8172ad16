import { CairnError } from '../core/errors.js';

/** The CLI's documented exit codes (README "Exit codes"). */
export const ExitCode = {
  ok: 0,
  error: 1,
  usage: 2,
  partial: 3,
  noRepository: 10,
  locked: 11,
  wrongPassword: 12,
} as const;

/** The exit code for an error that ended a command. */
export function exitCodeFor(err: unknown): number {
  if (!(err instanceof CairnError)) return ExitCode.error;
  switch (err.code) {
    case 'E_REPO_NOT_FOUND':
      return ExitCode.noRepository;
    case 'E_REPO_LOCKED':
      return ExitCode.locked;
    case 'E_WRONG_PASSWORD':
      return ExitCode.wrongPassword;
    case 'E_USAGE':
    case 'E_CONFIG_INVALID':
      return ExitCode.usage;
    default:
      return ExitCode.error;
  }
}

/**
 * cli: the `cairn` command for people at a terminal and for scripts (--json). A composition
 * root: it instantiates the local store, opens the repository with the given credential, and
 * maps errors to the documented exit codes with a message and a hint.
 */
export { buildProgram, runCli } from './program.js';
export { ExitCode, exitCodeFor } from './exit-codes.js';

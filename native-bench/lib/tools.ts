// How each tool is initialised, backs up and restores, and where it puts a restored absolute path.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { capture, type Command } from './exec.js';

export type ToolName = 'cairn' | 'restic' | 'borg';
export const TOOL_NAMES: readonly ToolName[] = ['cairn', 'restic', 'borg'];

export interface ToolOptions {
  borgCompression: string;
}

export interface Tool {
  name: ToolName;
  /** Why the tool cannot run here, or undefined if it can. */
  unavailable(): string | undefined;
  version(): string;
  /** Settings worth recording next to the results. */
  settings(): string;
  init(repo: string, home: string): Command;
  backup(repo: string, home: string, src: string, n: 1 | 2): Command;
  restore(repo: string, home: string, target: string): Command;
  /** Where the tool puts the restored copy of absolute path `src` when restoring into `target`. */
  restoredPath(target: string, src: string): string;
}

const PASSWORD = 'bench';
export const CAIRN_CLI = resolve(fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url)));

function which(cmd: string): boolean {
  return capture('sh', ['-c', `command -v ${cmd}`]) !== '';
}

function restic(): Tool {
  const env = (home: string): Record<string, string> => ({ RESTIC_PASSWORD: PASSWORD, RESTIC_CACHE_DIR: join(home, 'cache') });
  let v2: boolean | undefined;
  const supportsV2 = (): boolean => (v2 ??= capture('restic', ['init', '--help']).includes('--repository-version'));
  return {
    name: 'restic',
    unavailable: () => (which('restic') ? undefined : 'restic not installed (apt-get install restic)'),
    version: () => capture('restic', ['version']).replace(/^restic /, '').replace(/ compiled.*/, ''),
    settings: () => (supportsV2() ? 'repo v2 (zstd auto compression)' : 'repo v1 (no compression)'),
    init: (repo, home) => ({ cmd: 'restic', args: ['-r', repo, 'init', ...(supportsV2() ? ['--repository-version', '2'] : [])], env: env(home) }),
    backup: (repo, home, src) => ({ cmd: 'restic', args: ['-r', repo, 'backup', '--quiet', src], env: env(home) }),
    restore: (repo, home, target) => ({ cmd: 'restic', args: ['-r', repo, 'restore', 'latest', '--target', target], env: env(home) }),
    restoredPath: (target, src) => join(target, src),
  };
}

function borg(opts: ToolOptions): Tool {
  const env = (home: string): Record<string, string> => ({ BORG_PASSPHRASE: PASSWORD, BORG_BASE_DIR: home, BORG_DISPLAY_PASSPHRASE: 'no' });
  return {
    name: 'borg',
    unavailable: () => (which('borg') ? undefined : 'borg not installed (apt-get install borgbackup)'),
    version: () => capture('borg', ['--version']).replace(/^borg /, ''),
    settings: () => `--compression ${opts.borgCompression}, -e repokey, default chunker`,
    init: (repo, home) => ({ cmd: 'borg', args: ['init', '-e', 'repokey', repo], env: env(home) }),
    backup: (repo, home, src, n) => ({ cmd: 'borg', args: ['create', '--compression', opts.borgCompression, `${repo}::a${n}`, src], env: env(home) }),
    // borg extract writes into the cwd, with the leading '/' of archived paths dropped.
    restore: (repo, home, target) => ({ cmd: 'borg', args: ['extract', `${repo}::a2`], env: env(home), cwd: target }),
    restoredPath: (target, src) => join(target, src.replace(/^\/+/, '')),
  };
}

/** cairn runs as its users run it: the `cairn` bin, whose shebang passes node its V8 flags
 *  (src/cli/main.ts), not `node dist/cli/main.js`. */
function cairn(): Tool {
  const env = (repo: string, home: string): Record<string, string> => ({ CAIRN_REPO: repo, CAIRN_PASSWORD: PASSWORD, XDG_CACHE_HOME: join(home, 'cache') });
  return {
    name: 'cairn',
    unavailable: () => (existsSync(CAIRN_CLI) ? undefined : `${CAIRN_CLI} is missing (run npm run build first)`),
    version: () => capture('node', [CAIRN_CLI, '--version']) || 'unknown',
    settings: () => 'defaults',
    init: (repo, home) => ({ cmd: CAIRN_CLI, args: ['init'], env: env(repo, home) }),
    backup: (repo, home, src) => ({ cmd: CAIRN_CLI, args: ['backup', src, '--json'], env: env(repo, home) }),
    restore: (repo, home, target) => ({ cmd: CAIRN_CLI, args: ['restore', 'latest', '--target', target], env: env(repo, home) }),
    restoredPath: (target, src) => join(target, src),
  };
}

export function makeTool(name: ToolName, opts: ToolOptions): Tool {
  switch (name) {
    case 'cairn': return cairn();
    case 'restic': return restic();
    case 'borg': return borg(opts);
  }
}

/** Parse `--tools cairn,restic`. */
export function parseTools(s: string): ToolName[] {
  const names = s.split(',').map((x) => x.trim()).filter((x) => x !== '');
  for (const n of names) if (!TOOL_NAMES.includes(n as ToolName)) throw new Error(`unknown tool ${n} (want ${TOOL_NAMES.join(', ')})`);
  return names as ToolName[];
}

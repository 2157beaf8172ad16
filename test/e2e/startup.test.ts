import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const PROGRAM = fileURLToPath(new URL('../../dist/cli/program.js', import.meta.url));
const MAIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

/** The npm packages a fresh process has loaded after importing the CLI's program (what every
 *  `cairn` command pays before it does anything). */
function packagesLoadedByCli(): string[] {
  const script = `
    import { createRequire } from 'node:module';
    const require = createRequire(${JSON.stringify(PROGRAM)});
    await import(${JSON.stringify(PROGRAM)});
    const names = new Set();
    for (const file of Object.keys(require.cache)) {
      const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(file);
      if (m) names.add(m[1]);
    }
    process.stdout.write(JSON.stringify([...names].sort()));
  `;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as string[];
}

describe('cairn start-up', () => {
  // The agent's server stack cost every command ~25 MiB of RSS and 0.2 s of start-up; lz4 and
  // the progress bar ~5 MiB each. They are loaded by the commands that use them.
  it('loads neither the agent stack, nor lz4, nor the progress bar for a repository command', () => {
    const loaded = packagesLoadedByCli();
    expect(loaded).toContain('commander');
    for (const heavy of ['fastify', 'pino', 'libsql', 'chokidar', 'cron-parser', 'yaml', 'lz4-napi', 'cli-progress']) {
      expect(loaded, `${heavy} is loaded at start-up`).not.toContain(heavy);
    }
  });

  // `cairn` is the built main.js run by its shebang, which passes node the V8 flags and the
  // malloc setting a backup wants (src/cli/main.ts): the file must be executable and the line valid
  it('runs as an executable whose shebang gives node its flags and environment', () => {
    const script = `process.stdout.write(JSON.stringify({ argv: process.execArgv, mmap: process.env['MALLOC_MMAP_THRESHOLD_'] }))`;
    expect(execFileSync(MAIN, ['--version'], { encoding: 'utf8' }).trim()).toMatch(/^\d+\.\d+\.\d+/);
    const shebang = execFileSync('head', ['-1', MAIN], { encoding: 'utf8' }).trim().replace(/^#!/, '').split(/\s+/);
    expect(shebang.slice(0, 2)).toEqual(['/usr/bin/env', '-S']);
    const node = shebang.indexOf('node');
    const assignments = shebang.slice(2, node);
    const flags = shebang.slice(node + 1);
    expect(assignments).toEqual(['MALLOC_MMAP_THRESHOLD_=1048576']);
    expect(flags).toContain('--max-semi-space-size=2');
    expect(flags).toContain('--v8-pool-size=2');
    // node accepts them, and sees the setting, run as env runs it
    const out = JSON.parse(execFileSync('/usr/bin/env', [...assignments, process.execPath, ...flags, '-e', script], { encoding: 'utf8' })) as { argv: string[]; mmap: string };
    expect(out).toEqual({ argv: [...flags, '-e', script], mmap: '1048576' });
  });
});

// Running benchmark steps under GNU time (`/usr/bin/time -f '%e %M %U %S'`): wall seconds, peak RSS, CPU time.
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export const GNU_TIME = '/usr/bin/time';

export interface Command {
  cmd: string;
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
}

export interface Timed {
  seconds: number;
  rssKiB: number;
  /** User + system CPU seconds of the command. */
  cpuSeconds: number;
  code: number;
  stdout: string;
}

/** Run `c` under GNU time; stderr goes to `logFile`, stdout is returned (and logged). */
export function timed(c: Command, logFile: string, scratch: string): Promise<Timed> {
  const timeFile = join(scratch, `time-${process.pid}.txt`);
  rmSync(timeFile, { force: true });
  appendFileSync(logFile, `\n$ ${c.cwd ? `(cd ${c.cwd}) ` : ''}${c.cmd} ${c.args.join(' ')}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(GNU_TIME, ['-f', '%e %M %U %S', '-o', timeFile, c.cmd, ...c.args], {
      cwd: c.cwd,
      env: { ...process.env, ...c.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => appendFileSync(logFile, d));
    child.on('error', reject);
    child.on('close', (code) => {
      const stdout = Buffer.concat(out).toString('utf8');
      appendFileSync(logFile, stdout);
      // On failure GNU time prefixes "Command exited with non-zero status N"; the figures are on the last line.
      const lines = existsSync(timeFile) ? readFileSync(timeFile, 'utf8').trim().split('\n') : [];
      const m = /^([\d.]+) (\d+) ([\d.]+) ([\d.]+)$/.exec(lines[lines.length - 1] ?? '');
      rmSync(timeFile, { force: true });
      if (!m) {
        reject(new Error(`no timing from ${c.cmd} (exit ${code}); see ${logFile}`));
        return;
      }
      resolve({ seconds: Number(m[1]), rssKiB: Number(m[2]), cpuSeconds: Number(m[3]) + Number(m[4]), code: code ?? -1, stdout });
    });
  });
}

/** Run a short command and return its trimmed stdout (or '' if it failed). */
export function capture(cmd: string, args: string[], env?: Record<string, string>): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env } });
  return r.status === 0 ? r.stdout.trim() : '';
}

/** `du -sb DIR` in bytes. */
export function duBytes(dir: string): number {
  const out = capture('du', ['-sb', dir]);
  const n = Number(out.split(/\s/)[0]);
  if (!Number.isFinite(n) || out === '') throw new Error(`du -sb ${dir} failed`);
  return n;
}

export function tail(file: string, lines = 15): string {
  if (!existsSync(file)) return '';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

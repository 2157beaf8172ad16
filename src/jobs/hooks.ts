import { spawn } from 'node:child_process';

/** What a hook did. */
export interface HookResult {
  readonly ok: boolean;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  /** stdout and stderr interleaved, the last OUTPUT_LIMIT_BYTES of it. */
  readonly output: string;
  readonly durationMs: number;
}

/** Options of runHook. */
export interface HookOptions {
  readonly timeoutMs: number;
  /** Added to the agent's environment. */
  readonly env?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
}

/** A hook's output kept for the job record: enough for any error message, bounded for the DB. */
export const OUTPUT_LIMIT_BYTES = 64 * 1024;
/** After SIGTERM at a timeout or a cancel, how long the hook gets before SIGKILL. */
const KILL_GRACE_MS = 5_000;

/** Runs a hook command with /bin/sh in its own process group, so a timeout or a cancel stops
 *  the whole group (a hook that started `sleep` must not outlive it). Never rejects. */
export function runHook(command: string, opts: HookOptions): Promise<HookResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    let out = Buffer.alloc(0);
    const keep = (chunk: Buffer): void => {
      out = Buffer.concat([out, chunk]);
      if (out.length > OUTPUT_LIMIT_BYTES * 2) out = out.subarray(out.length - OUTPUT_LIMIT_BYTES);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let timedOut = false;
    let killer: NodeJS.Timeout | undefined;
    const stop = (): void => {
      if (child.pid === undefined || child.exitCode !== null || killer) return;
      signalGroup(child.pid, 'SIGTERM');
      killer = setTimeout(() => signalGroup(child.pid!, 'SIGKILL'), KILL_GRACE_MS).unref();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, opts.timeoutMs).unref();
    opts.signal?.addEventListener('abort', stop, { once: true });
    const finish = (exitCode: number | null, signal: NodeJS.Signals | null, extra = ''): void => {
      clearTimeout(timer);
      if (killer) clearTimeout(killer);
      opts.signal?.removeEventListener('abort', stop);
      const text = out.subarray(Math.max(0, out.length - OUTPUT_LIMIT_BYTES)).toString('utf8') + extra;
      resolve({ ok: exitCode === 0 && !timedOut, exitCode, signal, timedOut, output: text, durationMs: Date.now() - started });
    };
    child.on('error', (err) => finish(null, null, `cannot start /bin/sh: ${err.message}\n`));
    child.on('close', (code, sig) => finish(code, sig));
  });
}

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // the group is gone already
  }
}

/** A hook's outcome in words, for a job error or a log line. */
export function describeHook(which: 'pre' | 'post', r: HookResult, timeoutMs: number): string {
  if (r.timedOut) return `${which} hook did not finish within ${Math.round(timeoutMs / 1000)} s and was stopped`;
  if (r.signal) return `${which} hook was killed by ${r.signal}`;
  return `${which} hook exited with code ${String(r.exitCode)}`;
}

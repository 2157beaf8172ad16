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
  /** Variables of the agent's environment the hook must not see (the repository password, API
   *  tokens). */
  readonly unsetEnv?: readonly string[];
}

/** A hook's output kept for the job record: enough for any error message, bounded for the DB. */
export const OUTPUT_LIMIT_BYTES = 64 * 1024;
/** After SIGTERM at a timeout or a cancel, how long the hook gets before SIGKILL. */
const KILL_GRACE_MS = 5_000;

/** After the shell exits, how long its output pipes may stay open (held by something it left
 *  running in the background) before the hook is taken as finished. */
const PIPE_GRACE_MS = 1_000;

/** Runs a hook command with /bin/sh in its own process group, so a timeout or a cancel stops
 *  the whole group (a hook that started `sleep` must not outlive it). The hook is finished when
 *  the shell has exited and its output is closed, or PIPE_GRACE_MS after the shell exited (a
 *  background child it left may hold the output open for ever). Never rejects. */
export function runHook(command: string, opts: HookOptions): Promise<HookResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const env = { ...process.env, ...opts.env };
    for (const name of opts.unsetEnv ?? []) delete env[name];
    const child = spawn('/bin/sh', ['-c', command], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = Buffer.alloc(0);
    const keep = (chunk: Buffer): void => {
      out = Buffer.concat([out, chunk]);
      if (out.length > OUTPUT_LIMIT_BYTES * 2) out = out.subarray(out.length - OUTPUT_LIMIT_BYTES);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let timedOut = false;
    let finished = false;
    let killer: NodeJS.Timeout | undefined;
    let linger: NodeJS.Timeout | undefined;
    const stop = (): void => {
      if (finished || child.pid === undefined || killer) return;
      // the group is signalled even when the shell has exited: what it left running is stopped too
      signalGroup(child.pid, 'SIGTERM');
      killer = setTimeout(() => signalGroup(child.pid!, 'SIGKILL'), KILL_GRACE_MS).unref();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, opts.timeoutMs).unref();
    opts.signal?.addEventListener('abort', stop, { once: true });
    const finish = (exitCode: number | null, signal: NodeJS.Signals | null, extra = ''): void => {
      if (finished) return;
      finished = true;
      for (const t of [timer, killer, linger]) if (t) clearTimeout(t);
      opts.signal?.removeEventListener('abort', stop);
      child.stdout.destroy();
      child.stderr.destroy();
      const text = out.subarray(Math.max(0, out.length - OUTPUT_LIMIT_BYTES)).toString('utf8') + extra;
      resolve({ ok: exitCode === 0 && !timedOut, exitCode, signal, timedOut, output: text, durationMs: Date.now() - started });
    };
    child.on('error', (err) => finish(null, null, `cannot start /bin/sh: ${err.message}\n`));
    child.on('exit', (code, sig) => {
      linger = setTimeout(() => finish(code, sig, `(output still held open by a process the hook left running: not waited for)\n`), PIPE_GRACE_MS).unref();
    });
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

import { describe, expect, it } from 'vitest';
import { OUTPUT_LIMIT_BYTES, describeHook, runHook } from '../../src/jobs/hooks.js';

describe('runHook', () => {
  it('runs a command with the given environment and keeps its output', async () => {
    const r = await runHook('echo "source=$CAIRN_SOURCE"; echo oops >&2', { timeoutMs: 10_000, env: { CAIRN_SOURCE: 'web' } });
    expect(r).toMatchObject({ ok: true, exitCode: 0, timedOut: false });
    expect(r.output).toContain('source=web');
    expect(r.output).toContain('oops');
  });

  it('reports a failing command with its exit code and output', async () => {
    const r = await runHook('echo "cannot flush database"; exit 3', { timeoutMs: 10_000 });
    expect(r).toMatchObject({ ok: false, exitCode: 3 });
    expect(describeHook('pre', r, 10_000)).toBe('pre hook exited with code 3');
    expect(r.output).toContain('cannot flush database');
  });

  it('stops a hook that overruns its timeout, with everything it started', async () => {
    const t = Date.now();
    const r = await runHook('sleep 30 & sleep 30; echo never', { timeoutMs: 300 });
    expect(Date.now() - t).toBeLessThan(10_000);
    expect(r).toMatchObject({ ok: false, timedOut: true });
    expect(r.output).not.toContain('never');
    expect(describeHook('post', r, 300)).toMatch(/post hook did not finish within 0 s/);
  });

  it('stops on cancel', async () => {
    const ac = new AbortController();
    const p = runHook('sleep 30', { timeoutMs: 60_000, signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    const r = await p;
    expect(r.ok).toBe(false);
    expect(r.signal).toBe('SIGTERM');
  });

  it('keeps only the tail of a large output', async () => {
    const r = await runHook(`head -c ${OUTPUT_LIMIT_BYTES * 3} /dev/zero | tr '\\0' x; echo END`, { timeoutMs: 10_000 });
    expect(r.ok).toBe(true);
    expect(r.output.length).toBeLessThanOrEqual(OUTPUT_LIMIT_BYTES);
    expect(r.output.endsWith('END\n')).toBe(true);
  });
});

describe('runHook and what a hook leaves running', () => {
  it('finishes when the shell exits though a background child holds its output, and a timeout still stops that child', async () => {
    const t = Date.now();
    const r = await runHook('sleep 3 & echo started', { timeoutMs: 60_000 });
    expect(Date.now() - t).toBeLessThan(10_000);
    expect(r).toMatchObject({ ok: true, exitCode: 0 });
    expect(r.output).toContain('started');
  });

  it('hides the variables named in unsetEnv', async () => {
    process.env.CAIRN_TEST_SECRET = 'hunter2';
    try {
      const r = await runHook('echo "[$CAIRN_TEST_SECRET]"', { timeoutMs: 10_000, unsetEnv: ['CAIRN_TEST_SECRET'] });
      expect(r.output).toBe('[]\n');
    } finally {
      delete process.env.CAIRN_TEST_SECRET;
    }
  });
});

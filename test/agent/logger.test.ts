import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createAgentLogger } from '../../src/agent/agent.js';

describe('agent logger', () => {
  it('writes JSON lines with child fields and redacts secrets wherever they sit', () => {
    const out = new PassThrough();
    const lines: string[] = [];
    out.on('data', (b: Buffer) => lines.push(...b.toString('utf8').split('\n').filter(Boolean)));
    const log = createAgentLogger('info', out).child({ jobId: '7', source: 'web' });
    log.info({ password: 'hunter2', token: 'abc', repo: { passphrase: 'x', path: '/r' }, req: { headers: { authorization: 'Bearer s3cret' } } }, 'job started');
    log.debug('not at info');
    expect(lines).toHaveLength(1);
    const l = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(l).toMatchObject({ level: 30, msg: 'job started', jobId: '7', source: 'web', password: '[redacted]', token: '[redacted]', repo: { passphrase: '[redacted]', path: '/r' } });
    expect(lines[0]).not.toMatch(/hunter2|s3cret|"abc"/);
  });
});

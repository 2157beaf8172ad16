import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { createMetrics } from '../../src/api/metrics.js';
import { systemClock } from '../../src/jobs/clock.js';
import { JobManager } from '../../src/jobs/job-manager.js';
import { createMemoryJobStore } from '../../src/jobs/job-store.js';

function get(url: string, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { ca }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

describe('API over TLS, on a real socket', () => {
  it('serves HTTPS with the configured certificate', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cairn-tls-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
      const cert = readFileSync(path.join(dir, 'cert.pem'));
      const fail = () => Promise.reject(new Error('no jobs here'));
      const jobs = new JobManager({ store: createMemoryJobStore(), clock: systemClock, logger: pino({ level: 'silent' }), runners: { backup: fail, restore: fail, check: fail }, admit: () => ({}) });
      const app = await buildApp({
        jobs,
        status: { sources: () => [], summary: () => { throw new Error('unused'); }, health: () => ({ status: 'ok', reasons: [] }), snapshots: () => Promise.resolve([]) },
        metrics: createMetrics({ lastSuccessMs: () => [], running: () => 0, queued: () => 0 }),
        roleOf: () => undefined,
        tokensConfigured: () => false,
        version: 'test',
        tls: { key: readFileSync(path.join(dir, 'key.pem')), cert },
      });
      await app.listen({ host: '127.0.0.1', port: 0 });
      const { port } = app.server.address() as AddressInfo;
      const r = await get(`https://127.0.0.1:${port}/health`, cert);
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toEqual({ status: 'ok', reasons: [] });
      await expect(get(`https://127.0.0.1:${port}/health`, Buffer.from(''))).rejects.toThrow(/self.signed|certificate/i);
      await app.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadAgentConfig } from '../../src/agent/config.js';

const CONFIG_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../config');

describe('packaged configs', () => {
  it('the container config (config/cairn.container.yaml) keeps everything in /var/lib/cairn and backs up /data every 6 hours', async () => {
    const c = await loadAgentConfig(path.join(CONFIG_DIR, 'cairn.container.yaml'));
    expect(c.repository).toEqual({ path: '/var/lib/cairn/repo', keyFile: '/var/lib/cairn/cairn.key' });
    expect(c.stateDir).toBe('/var/lib/cairn/state');
    expect(c.api).toEqual({
      enabled: true,
      host: '0.0.0.0',
      port: 8421,
      tokens: [
        { role: 'reader', file: '/var/lib/cairn/reader.token' },
        { role: 'operator', file: '/var/lib/cairn/operator.token' },
      ],
    });
    expect(c.sources).toHaveLength(1);
    expect(c.sources[0]).toMatchObject({ name: 'data', kind: 'folder', paths: ['/data'], schedule: ['0 */6 * * *'] });
    expect(c.logLevel).toBe('info');
  });

  it('the embedded default (config/cairn.yaml) keeps its state beside the checkout and listens on loopback only', async () => {
    const c = await loadAgentConfig(path.join(CONFIG_DIR, 'cairn.yaml'));
    const root = path.dirname(CONFIG_DIR);
    expect(c.repository).toEqual({ path: path.join(root, 'var/repo'), keyFile: path.join(root, 'var/cairn.key') });
    expect(c.stateDir).toBe(path.join(root, 'var/state'));
    expect(c.api.enabled).toBe(true);
    expect(c.api.host).toBe('127.0.0.1');
    expect(c.api.port).toBe(8421);
    expect(c.api.tokens).toEqual([
      { role: 'reader', file: path.join(root, 'var/reader.token') },
      { role: 'operator', file: path.join(root, 'var/operator.token') },
    ]);
    expect(c.sources.length).toBeGreaterThan(0);
    expect(c.sources.every((s) => s.schedule.length > 0)).toBe(true);
  });
});

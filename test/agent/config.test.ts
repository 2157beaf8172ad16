import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadAgentConfig, parseAgentConfig } from '../../src/agent/config.js';
import { ConfigError } from '../../src/core/errors.js';

const FILE = '/etc/cairn/cairn.yaml';

function problems(yaml: string): string[] {
  try {
    parseAgentConfig(yaml, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('E_CONFIG_INVALID');
    return (err as Error).message.split('\n').slice(1).map((l) => l.trim());
  }
  throw new Error('config was accepted');
}

const GOOD = `
repository:
  path: /srv/repo
  keyFile: /etc/cairn/key
sources:
  - name: web
    kind: folder
    paths: [/var/www, data]
    schedule: ['0 */6 * * *', '30 12 * * 1-5']
`;

describe('agent config', () => {
  it('accepts a valid config, applying defaults and resolving relative paths from its folder', () => {
    const c = parseAgentConfig(GOOD, FILE);
    expect(c.repository).toEqual({ path: '/srv/repo', keyFile: '/etc/cairn/key' });
    expect(c.sources[0]!.paths).toEqual(['/var/www', '/etc/cairn/data']);
    expect(c.stateDir).toBe('/etc/cairn/var/state');
    expect(c.logLevel).toBe('info');
  });

  it('reports three mistakes at once, each with its key path, the bad value and what is allowed', () => {
    const p = problems(`
repository:
  path: /srv/repo
  keyFile: /etc/cairn/key
sources:
  - name: Web Server
    kind: folder
    paths: []
    schedule: ['61 * * * *']
`);
    expect(p).toHaveLength(3);
    expect(p[0]).toMatch(/^sources\[0\]\.name: "Web Server" is not allowed: expected lowercase letters, digits, - and _$/);
    expect(p[1]).toMatch(/^sources\[0\]\.paths: \[\] is not allowed/);
    expect(p[2]).toMatch(/^sources\[0\]\.schedule\[0\]: "61 \* \* \* \*" is not a cron expression/);
  });

  it.each([
    ['an inline password', 'repository:\n  path: /r\n  password: hunter2\nsources: []', /repository\.password: passwords are never written in the config/],
    ['no secret at all', 'repository:\n  path: /r\nsources:\n  - {name: a, kind: folder, paths: [/x], schedule: ["0 * * * *"]}', /^repository: give exactly one of keyFile, passwordFile, passwordEnv \(found none\)/],
    ['two secrets', 'repository:\n  path: /r\n  keyFile: /k\n  passwordEnv: PW\nsources:\n  - {name: a, kind: folder, paths: [/x], schedule: ["0 * * * *"]}', /found keyFile, passwordEnv/],
    ['a misspelled key', 'repository:\n  path: /r\n  keyfile: /k\nsources: []', /repository\.keyfile: unknown key/],
    ['a missing key', 'sources: []', /^repository: missing/],
    ['a duplicate source name', 'repository:\n  path: /r\n  keyFile: /k\nsources:\n  - {name: a, kind: folder, paths: [/x], schedule: ["0 * * * *"]}\n  - {name: a, kind: folder, paths: [/y], schedule: ["0 * * * *"]}', /sources\[1\]\.name: "a" is used by an earlier source/],
    ['a bad log level', 'repository:\n  path: /r\n  keyFile: /k\nsources:\n  - {name: a, kind: folder, paths: [/x], schedule: ["0 * * * *"]}\nlog: {level: loud}', /log\.level: "loud" is not allowed: expected one of "fatal", "error"/],
  ])('refuses %s with a message naming the key', (_what, yaml, pattern) => {
    expect(problems(yaml).some((l) => pattern.test(l))).toBe(true);
  });

  it('says when the file is not YAML or cannot be read', async () => {
    expect(() => parseAgentConfig('repository: [unclosed', FILE)).toThrow(/not valid YAML/);
    await expect(loadAgentConfig('/nonexistent/cairn.yaml')).rejects.toThrow(/cannot read config file/);
  });

  it('the shipped default config (config/cairn.yaml) is valid', async () => {
    const file = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../config/cairn.yaml');
    const c = await loadAgentConfig(file);
    expect(c.repository.keyFile).toMatch(/var\/cairn\.key$/);
    expect(c.sources.length).toBeGreaterThan(0);
  });
});

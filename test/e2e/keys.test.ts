// The key commands through the real CLI: a repository opens with any of its keys, a removed key
// no longer opens it, passwd swaps the current key, and a key file works like a password.
import * as fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, describeRun, makeTempDir, parseJson, removeTempDir, runCairn } from './helpers/cli.js';

const TIMEOUT_MS = 60_000;

let root: string;
let repo: string;

const as = (password: string, ...args: string[]): Promise<CliResult> => runCairn(args, { env: { CAIRN_REPO: repo, CAIRN_PASSWORD: password } });

beforeAll(async () => {
  root = await makeTempDir('keys');
  repo = path.join(root, 'repo');
  const r = await as('first', 'init');
  expect(r.code, describeRun(r)).toBe(0);
});
afterAll(async () => {
  await removeTempDir(root);
});

describe('cairn key', () => {
  it('adds a key, and the repository opens with either password', async () => {
    const r = await runCairn(['key', 'add', '--json'], { env: { CAIRN_REPO: repo, CAIRN_PASSWORD: 'first', CAIRN_NEW_PASSWORD: 'second' } });
    expect(r.code, describeRun(r)).toBe(0);
    expect(parseJson<{ keyId: string }>(r).keyId).toMatch(/^[0-9a-f]{64}$/);
    expect((await as('first', 'snapshots')).code).toBe(0);
    expect((await as('second', 'snapshots')).code).toBe(0);
    expect((await as('third', 'snapshots')).code).toBe(12);
    const list = parseJson<{ id: string; current: boolean; kind: string }[]>(await as('second', 'key', 'list', '--json'));
    expect(list).toHaveLength(2);
    expect(list.filter((k) => k.current)).toHaveLength(1);
    expect(list.every((k) => k.kind === 'password')).toBe(true);
  }, TIMEOUT_MS);

  it('removes another key, refuses to remove the one in use, and the removed one stops working', async () => {
    const list = parseJson<{ id: string; current: boolean }[]>(await as('second', 'key', 'list', '--json'));
    const mine = list.find((k) => k.current)!;
    const other = list.find((k) => !k.current)!;
    const refused = await as('second', 'key', 'remove', mine.id.slice(0, 8));
    expect(refused.code, describeRun(refused)).toBe(2);
    expect(refused.stderr).toContain('refusing to remove the key');
    const removed = await as('second', 'key', 'remove', other.id.slice(0, 8));
    expect(removed.code, describeRun(removed)).toBe(0);
    expect((await as('first', 'snapshots')).code).toBe(12);
    expect((await as('second', 'snapshots')).code).toBe(0);
  }, TIMEOUT_MS);

  it('passwd replaces the current key: the new password opens, the old one does not', async () => {
    const r = await runCairn(['key', 'passwd'], { env: { CAIRN_REPO: repo, CAIRN_PASSWORD: 'second', CAIRN_NEW_PASSWORD: 'fourth' } });
    expect(r.code, describeRun(r)).toBe(0);
    expect((await as('second', 'snapshots')).code).toBe(12);
    expect((await as('fourth', 'snapshots')).code).toBe(0);
  }, TIMEOUT_MS);

  it('a key file created by key add unlocks the repository and the data it backed up', async () => {
    const keyFile = path.join(root, 'agent.key');
    const added = await runCairn(['key', 'add', '--new-key-file', keyFile], { env: { CAIRN_REPO: repo, CAIRN_PASSWORD: 'fourth' } });
    expect(added.code, describeRun(added)).toBe(0);
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    const src = path.join(root, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'a.txt'), 'key file data\n');
    const backup = await runCairn(['backup', src], { env: { CAIRN_REPO: repo, CAIRN_KEY_FILE: keyFile } });
    expect(backup.code, describeRun(backup)).toBe(0);
    const target = path.join(root, 'restore');
    const restored = await as('fourth', 'restore', 'latest', '--target', target);
    expect(restored.code, describeRun(restored)).toBe(0);
    expect(fs.readFileSync(path.join(target, src, 'a.txt'), 'utf8')).toBe('key file data\n');
    fs.writeFileSync(path.join(root, 'wrong.key'), 'x'.repeat(44));
    expect((await runCairn(['snapshots'], { env: { CAIRN_REPO: repo, CAIRN_KEY_FILE: path.join(root, 'wrong.key') } })).code).toBe(12);
  }, TIMEOUT_MS);
});

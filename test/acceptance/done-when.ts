/**
 * Issue 2's "Done when", at full scale, through the real CLI as a new user would run it:
 * a tree of 30k+ files with symlinks, hard links, empty dirs, odd names and a sparse 1 GiB file
 * is backed up and restored identical (content, modes, mtimes, link targets, holes); a second
 * backup reads nothing; check --read-data passes; one flipped byte in a pack makes it fail and
 * name the snapshot and the file. Too slow for every CI run (about a minute); run it with
 *   npm run build && npx tsx test/acceptance/done-when.ts [work dir]
 * It exits non-zero on the first failed expectation and prints what it measured.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type BackupSummary, parseJson, runCairn } from '../e2e/helpers/cli.js';
import { type TreeEntry, buildTree, compareTrees, scanTree, under } from '../e2e/helpers/tree.js';

const work = process.argv[2] ?? fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-done-when-'));
const src = path.join(work, 'src');
const repo = path.join(work, 'repo');
const target = path.join(work, 'restore');
const env = { CAIRN_REPO: repo, CAIRN_PASSWORD: 'done when' };
const cairn = (...args: string[]) => runCairn(args, { env });

function expect(ok: boolean, what: string): void {
  if (!ok) {
    console.error(`FAILED: ${what}`);
    process.exit(1);
  }
  console.log(`ok: ${what}`);
}

const entries: TreeEntry[] = [];
let files = 0;
for (let d = 0; d < 600; d++) {
  const dir = `d${d % 30}/sub${d}`;
  for (let f = 0; f < 50; f++, files++) entries.push({ kind: 'file', path: `${dir}/f${f}.txt`, data: `file ${d}/${f} ${'x'.repeat((d * 50 + f) % 3000)}\n`, mode: f % 7 === 0 ? 0o640 : 0o644 });
  if (d % 50 === 0) entries.push({ kind: 'dir', path: `${dir}/empty-${d}` });
}
entries.push(
  { kind: 'file', path: 'odd/with\nnewline', data: 'newline name\n' },
  { kind: 'file', path: 'odd/with space and ünïcödé ✓', data: 'unicode name\n' },
  { kind: 'file', path: Buffer.concat([Buffer.from('odd/bad-'), Buffer.from([0xff, 0xfe]), Buffer.from('.bin')]), data: 'invalid utf-8 name\n' },
  { kind: 'file', path: 'odd/exec.sh', data: '#!/bin/sh\necho hi\n', mode: 0o755 },
  { kind: 'symlink', path: 'links/rel', target: '../odd/exec.sh' },
  { kind: 'symlink', path: 'links/abs', target: '/etc/hostname' },
  { kind: 'symlink', path: 'links/dangling', target: 'nowhere' },
  { kind: 'file', path: 'links/big.bin', data: randomBytes(3 * 1024 * 1024) },
  { kind: 'hardlink', path: 'links/big-hard.bin', existing: 'links/big.bin' },
  { kind: 'sparse', path: 'disk.img', sizeBytes: 1024 ** 3, writes: [{ offset: 4096, data: randomBytes(8192) }, { offset: 700 * 1024 ** 2, data: randomBytes(65536) }] },
);
files += 8;
buildTree(src, entries);
console.log(`built ${files} files under ${src}`);

expect((await cairn('init')).code === 0, 'cairn init');
let r = await cairn('backup', src, '--json');
expect(r.code === 0, `first backup (exit ${r.code}) ${r.stderr.slice(0, 300)}`);
const first = parseJson<BackupSummary>(r);
console.log(`first backup: ${first.filesNew} files, read ${first.bytesRead} B, added ${first.bytesAdded} B in ${first.durationMs} ms`);
r = await cairn('restore', 'latest', '--target', target);
expect(r.code === 0, `restore (exit ${r.code}) ${r.stderr.slice(0, 300)}`);
const diffs = compareTrees(await scanTree(src), await scanTree(under(target, src.slice(1))));
expect(diffs.length === 0, `restored tree identical (content, modes, mtimes, links, hard links, holes)${diffs.length ? `: ${diffs.slice(0, 5).join('; ')}` : ''}`);
const sparse = fs.statSync(path.join(target, src, 'disk.img'));
expect(sparse.blocks * 512 < 64 * 1024 ** 2, `sparse 1 GiB file restored sparse (${sparse.blocks * 512} bytes allocated)`);
r = await cairn('backup', src, '--json');
const second = parseJson<BackupSummary>(r);
expect(r.code === 0 && second.bytesRead === 0, `second backup reads no file content (bytesRead ${second.bytesRead}, ${second.filesUnmodified} unmodified, ${second.durationMs} ms)`);
r = await cairn('check', '--read-data');
expect(r.code === 0, `check --read-data passes: ${r.stdout.trim().split('\n').at(-1)}`);

const packs = fs.readdirSync(path.join(repo, 'data')).flatMap((p) => fs.readdirSync(path.join(repo, 'data', p)).map((f) => path.join(repo, 'data', p, f)));
const biggest = packs.map((p) => ({ p, size: fs.statSync(p).size })).sort((a, b) => b.size - a.size)[0]!;
const fd = fs.openSync(biggest.p, 'r+');
const at = Math.floor(biggest.size / 2);
const b = Buffer.alloc(1);
fs.readSync(fd, b, 0, 1, at);
b[0] = b[0]! ^ 0x01;
fs.writeSync(fd, b, 0, 1, at);
fs.closeSync(fd);
r = await cairn('check', '--read-data');
const snapshots = parseJson<{ id: string }[]>(await cairn('snapshots', '--json'));
const named = snapshots.some((s) => r.stdout.includes(`affects snapshot ${s.id.slice(0, 12)}`)) && /affects snapshot [0-9a-f]{12}: \//.test(r.stdout);
expect(r.code !== 0 && named, `one flipped byte in pack ${path.basename(biggest.p).slice(0, 12)} fails check --read-data, naming snapshots and files:\n${r.stdout.split('\n').filter((l) => l.includes('affects')).slice(0, 4).join('\n')}`);
console.log(`all done-when expectations hold (work dir ${work})`);

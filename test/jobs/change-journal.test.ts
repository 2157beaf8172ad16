// The change journal on real folders with real chokidar: what it journals, how plans narrow and
// commit, the debounce, and every way it falls back to a full scan. Tests wait on events (polled
// with vi.waitFor), never for a fixed time.
import { appendFileSync, chmodSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type * as Chokidar from 'chokidar';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type BackupResult, backup } from '../../src/engine/backup.js';
import { restore } from '../../src/engine/restore.js';
import { type ChangeJournal, type ChangeJournalOptions, createChangeJournal } from '../../src/jobs/change-journal.js';
import { compareTrees, scanTree } from '../e2e/helpers/tree.js';
import { newTestRepo } from '../repo/fixtures.js';
import type { SnapshotId } from '../../src/core/ids.js';

// the real chokidar, with each watcher kept so a test can make it report an error
const watchers = vi.hoisted(() => [] as Chokidar.FSWatcher[]);
vi.mock('chokidar', async (importOriginal) => {
  const real = await importOriginal<typeof Chokidar>();
  return {
    ...real,
    watch: (...args: Parameters<typeof real.watch>): Chokidar.FSWatcher => {
      const w = real.watch(...args);
      watchers.push(w);
      return w;
    },
  };
});

const WAIT = { timeout: 5000, interval: 10 };

let root: string;
let open: ChangeJournal[] = [];
const at = (rel: string): string => path.join(root, rel);

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'cairn-journal-'));
  for (const d of ['a/x', 'b', 'node_modules/pkg']) mkdirSync(at(d), { recursive: true });
  writeFileSync(at('a/x/f.txt'), 'f\n');
  writeFileSync(at('b/g.txt'), 'g\n');
});
afterEach(async () => {
  await Promise.all(open.map((j) => j.close()));
  open = [];
  await rm(root, { recursive: true, force: true });
});

/** A journal over `root`, not started; counts its onSettled calls. */
function journal(over: Partial<ChangeJournalOptions> = {}): ChangeJournal & { readonly settled: number } {
  let settled = 0;
  const j = createChangeJournal({ paths: [root], excludes: [], debounceMs: 200, onSettled: () => settled++, ...over });
  open.push(j);
  return Object.defineProperty(j, 'settled', { get: () => settled }) as ChangeJournal & { readonly settled: number };
}

/** A started journal whose first (full) scan is committed, so its next plans narrow. */
async function narrowing(over: Partial<ChangeJournalOptions> = {}): Promise<ReturnType<typeof journal>> {
  const j = journal(over);
  await j.start();
  j.plan().commit('base-snapshot');
  return j;
}

/** Makes `change`, then waits until the journal has been quiet for debounceMs: every event it
 *  caused has then arrived (some, like chokidar's `add`, come after an async stat). */
async function settle(j: ReturnType<typeof journal>, change: () => void): Promise<void> {
  const before = j.settled;
  change();
  await vi.waitFor(() => expect(j.settled).toBeGreaterThan(before), WAIT);
}

/** Waits until the journal reports `p` as possibly changed. */
async function journaled(j: ChangeJournal, p: string): Promise<void> {
  await vi.waitFor(() => expect(j.plan().mayHaveChanged(p)).toBe(true), WAIT);
}

describe('change journal', () => {
  it('plans a full scan first after start, and none once it is committed', async () => {
    const j = journal();
    await j.start();
    expect(j.state).toBe('watching');
    const first = j.plan();
    expect(first).toMatchObject({ full: true, paths: 0 });
    expect(j.reason).toMatch(/started/);
    expect(first.mayHaveChanged(at('b'))).toBe(true);
    first.commit('base-snapshot');
    const next = j.plan();
    expect(next).toMatchObject({ full: false, paths: 0 });
    expect(j.reason).toBeUndefined();
    expect(next.mayHaveChanged(root)).toBe(false);
  });

  it('reports a changed file for its folder and every ancestor, not for a sibling folder', async () => {
    const j = await narrowing();
    appendFileSync(at('a/x/f.txt'), 'more\n');
    await journaled(j, at('a/x/f.txt'));
    const plan = j.plan();
    expect(plan.full).toBe(false);
    for (const p of ['a/x', 'a', '']) expect(plan.mayHaveChanged(at(p))).toBe(true);
    expect(plan.mayHaveChanged('/')).toBe(true);
    expect(plan.mayHaveChanged(at('b'))).toBe(false);
    expect(plan.mayHaveChanged(at('a/xy'))).toBe(false);
  });

  it('reports everything inside a folder that was added', async () => {
    const j = await narrowing();
    mkdirSync(at('b/new/deeper'), { recursive: true });
    await journaled(j, at('b/new/deeper'));
    expect(j.plan().mayHaveChanged(at('b/new/deeper/deepest'))).toBe(true);
    expect(j.plan().mayHaveChanged(at('a'))).toBe(false);
  });

  it('reports what chokidar leaves out: a chmod of a file read since it was written, a dangling symlink', async () => {
    utimesSync(at('b/g.txt'), new Date(2_000_000), new Date(1_000_000)); // atime after mtime: read
    const j = await narrowing();
    chmodSync(at('b/g.txt'), 0o600);
    await journaled(j, at('b/g.txt'));
    symlinkSync('nowhere', at('a/x/dangling'));
    await journaled(j, at('a/x/dangling'));
  });

  it('calls onSettled once after a burst of changes has been quiet for debounceMs', async () => {
    const j = await narrowing({ debounceMs: 300 });
    for (let i = 0; i < 20; i++) writeFileSync(at(`b/burst-${i}`), `${i}\n`);
    await vi.waitFor(() => expect(j.settled).toBeGreaterThanOrEqual(1), WAIT);
    expect(j.plan().paths).toBeGreaterThanOrEqual(20);
    // a second burst settles after every timer the first one could have left running
    writeFileSync(at('a/after'), 'after\n');
    await vi.waitFor(() => expect(j.settled).toBeGreaterThanOrEqual(2), WAIT);
    expect(j.settled).toBe(2);
  });

  it('calls onSettled during changes that never pause, after at most ten debounce periods', async () => {
    const j = await narrowing({ debounceMs: 200 });
    const started = Date.now();
    // a change every 10 ms: without the cap the debounce would wait for ever
    let last = started;
    let longestGap = 0;
    for (let i = 0; j.settled === 0 && Date.now() - started < 8000; i++) {
      writeFileSync(at('a/busy.log'), `${i}\n`);
      longestGap = Math.max(longestGap, Date.now() - last);
      last = Date.now();
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(j.settled).toBe(1);
    // it settled at the cap, not at a pause: unless the machine itself paused the writes for a
    // debounce period (a loaded CI run once did), which is a pause the debounce may take
    if (longestGap < 200) expect(Date.now() - started).toBeGreaterThanOrEqual(2000 - 50);
  });

  it('keeps what changed after plan() when the plan commits', async () => {
    const j = await narrowing();
    await settle(j, () => {
      writeFileSync(at('a/before'), '1\n');
      writeFileSync(at('a/x/again'), '1\n');
    });
    const plan = j.plan();
    expect(plan.paths).toBe(2);
    await settle(j, () => {
      appendFileSync(at('a/x/again'), '2\n'); // journaled before the plan and again after it
      writeFileSync(at('b/after'), '1\n');
    });
    plan.commit('base-snapshot');
    const next = j.plan();
    expect(next.paths).toBe(2);
    expect(next.mayHaveChanged(at('a/before'))).toBe(false);
    expect(next.mayHaveChanged(at('a/x'))).toBe(true);
    expect(next.mayHaveChanged(at('b'))).toBe(true);
  });

  it('does not watch excluded paths', async () => {
    const j = await narrowing({ excludes: ['node_modules/', '*.tmp'] });
    writeFileSync(at('node_modules/pkg/index.js'), 'x\n');
    mkdirSync(at('node_modules/pkg/lib'));
    writeFileSync(at('a/scratch.tmp'), 'x\n');
    writeFileSync(at('a/barrier'), 'x\n'); // after the others: once it is in, they would be too
    await journaled(j, at('a/barrier'));
    const plan = j.plan();
    expect(plan.paths).toBe(1);
    expect(plan.mayHaveChanged(at('node_modules'))).toBe(false);
    expect(plan.mayHaveChanged(at('a/scratch.tmp'))).toBe(false);
  });

  it('overflows past maxPaths: the paths are dropped and the next plan is full', async () => {
    const j = await narrowing({ maxPaths: 2 });
    await settle(j, () => {
      writeFileSync(at('b/1'), '1\n');
      writeFileSync(at('b/2'), '2\n');
    });
    expect(j.plan()).toMatchObject({ full: false, paths: 2 });
    await settle(j, () => writeFileSync(at('b/3'), '3\n'));
    const plan = j.plan();
    expect(plan.full).toBe(true);
    expect(plan.paths).toBeLessThanOrEqual(2); // dropped; a later event for b/3 may be journaled again
    expect(j.reason).toMatch(/more than 2 paths/);
    plan.commit('base-snapshot');
    expect(j.plan()).toMatchObject({ full: false, paths: 0 });
  });

  it('plans a full scan when the last one started fullScanEveryMs ago', async () => {
    let nowMs = 1_000_000;
    const j = await narrowing({ now: () => nowMs, fullScanEveryMs: 60_000 });
    nowMs += 59_999;
    expect(j.plan().full).toBe(false);
    nowMs += 1;
    expect(j.plan().full).toBe(true);
    expect(j.reason).toMatch(/last full scan started 60 s ago/);
    j.plan().commit('base-snapshot');
    nowMs += 59_999;
    expect(j.plan().full).toBe(false);
  });

  it('does not count a full scan begun before the watcher was ready', async () => {
    const j = journal();
    const ready = j.start();
    const early = j.plan();
    expect(early.full).toBe(true);
    expect(j.reason).toMatch(/not ready/);
    early.commit('base-snapshot');
    await ready;
    expect(j.plan().full).toBe(true);
  });

  it('fails on a watcher error: every plan is full and the watcher is closed', async () => {
    const j = await narrowing();
    const w = watchers.at(-1)!;
    w.emit('error', Object.assign(new Error('ENOSPC: System limit for number of file watchers reached'), { code: 'ENOSPC' }));
    expect(j.state).toBe('failed');
    expect(j.reason).toMatch(/ENOSPC/);
    expect(j.plan()).toMatchObject({ full: true, paths: 0 });
    expect(w.closed).toBe(true);
  });

  it('rejects start and fails when a path cannot be watched', async () => {
    const j = journal({ paths: [root, at('x'.repeat(300))] });
    await expect(j.start()).rejects.toMatchObject({ code: 'E_IO', message: expect.stringMatching(/ENAMETOOLONG/) });
    expect(j.state).toBe('failed');
    expect(j.plan().full).toBe(true);
  });

  it('plans full scans once closed', async () => {
    const j = await narrowing();
    await j.close();
    expect(j.state).toBe('stopped');
    expect(j.plan().full).toBe(true);
    expect(watchers.at(-1)!.closed).toBe(true);
  });
});

describe('change journal feeding a backup', () => {
  it('narrows the next backup to what it journaled; the snapshot restores equal to the tree', async () => {
    const { repo } = await newTestRepo();
    const j = journal();
    await j.start();
    const asked = new Map<string, boolean>();
    const run = async (): Promise<BackupResult> => {
      const plan = j.plan();
      const changes = {
        mayHaveChanged: (dir: string): boolean => {
          const may = plan.mayHaveChanged(dir);
          asked.set(dir, may);
          return may;
        },
      };
      const r = await backup(repo, { paths: [root], program: 'test', ...(plan.full || !plan.base ? {} : { changes: { ...changes, base: plan.base as SnapshotId } }) });
      plan.commit(r.snapshotId);
      return r;
    };
    const first = await run();
    expect(first.snapshot.summary.filesNew).toBe(2);
    await settle(j, () => {
      appendFileSync(at('a/x/f.txt'), 'more\n');
      writeFileSync(at('a/x/new.txt'), 'new\n');
    });
    const second = await run();
    // a/x gained an entry (its mtime moved), so it is read without asking the journal
    expect(asked).toEqual(new Map([[root, true], [at('a'), true], [at('b'), false], [at('node_modules'), false]]));
    expect(second.snapshot.summary).toMatchObject({ filesNew: 1, filesChanged: 1, filesUnmodified: 1, dirs: first.snapshot.summary.dirs });
    const target = path.join(root, '..', `${path.basename(root)}-restored`);
    try {
      await restore(repo, second.snapshot, { target, owners: false });
      expect(compareTrees(await scanTree(root), await scanTree(path.join(target, root)))).toEqual([]);
    } finally {
      await rm(target, { recursive: true, force: true });
    }
    expect(j.plan()).toMatchObject({ full: false, paths: 0 });
  });
});

import Database from 'libsql';
import { CairnError } from '../core/errors.js';
import type { Job, JobKind, JobPatch, JobState, NewJob } from './job.js';
import { type JobCount, type JobFilter, type JobStore, decodeCursor, encodeCursor } from './job-store.js';

/** The schema version this code writes (PRAGMA user_version). */
const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  kind        TEXT    NOT NULL,
  state       TEXT    NOT NULL,
  source      TEXT,
  trigger     TEXT    NOT NULL,
  params      TEXT    NOT NULL,
  created_ms  INTEGER NOT NULL,
  started_ms  INTEGER,
  finished_ms INTEGER,
  progress    TEXT,
  result      TEXT,
  error       TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_state   ON jobs (state, id);
CREATE INDEX IF NOT EXISTS jobs_by_source  ON jobs (source, kind, id);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_ms);
`;

interface Row {
  id: number;
  kind: string;
  state: string;
  source: string | null;
  trigger: string;
  params: string;
  created_ms: number;
  started_ms: number | null;
  finished_ms: number | null;
  progress: string | null;
  result: string | null;
  error: string | null;
}

const iso = (ms: number | null): string | undefined => (ms === null ? undefined : new Date(ms).toISOString());
const ms = (s: string | undefined): number | null => (s === undefined ? null : Date.parse(s));
const json = (v: unknown): string | null => (v === undefined ? null : JSON.stringify(v));

function toJob(r: Row): Job {
  const started = iso(r.started_ms);
  const finished = iso(r.finished_ms);
  return {
    id: String(r.id),
    kind: r.kind as JobKind,
    state: r.state as JobState,
    ...(r.source !== null ? { source: r.source } : {}),
    trigger: r.trigger as Job['trigger'],
    params: JSON.parse(r.params) as Job['params'],
    createdAt: iso(r.created_ms)!,
    ...(started !== undefined ? { startedAt: started } : {}),
    ...(finished !== undefined ? { finishedAt: finished } : {}),
    ...(r.progress !== null ? { progress: JSON.parse(r.progress) as Job['progress'] } : {}),
    ...(r.result !== null ? { result: JSON.parse(r.result) as Job['result'] } : {}),
    ...(r.error !== null ? { error: JSON.parse(r.error) as Job['error'] } : {}),
  };
}

/**
 * The job history in a SQLite file (libsql, better-sqlite3's API as a prebuilt Node-API addon):
 * WAL mode, so the API's reads never wait on the runner's writes; synchronous=NORMAL, which in
 * WAL mode loses nothing on a process crash (only, at worst, the last commits on a power loss).
 */
export function openSqliteJobStore(file: string): JobStore {
  let db: Database.Database;
  try {
    db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('busy_timeout = 5000');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new CairnError('E_STATE', `job database ${file} was written by a newer cairn (schema ${version}, this one knows ${SCHEMA_VERSION})`, { hint: 'upgrade cairn, or move the file away to start a new history' });
    }
    db.exec(SCHEMA);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  } catch (err) {
    if (err instanceof CairnError) throw err;
    throw new CairnError('E_STATE', `cannot open job database ${file}: ${(err as Error).message}`, { cause: err, hint: 'check the state directory exists, is writable, and the disk is not full' });
  }
  const q = {
    insert: db.prepare('INSERT INTO jobs (kind, state, source, trigger, params, created_ms) VALUES (?, ?, ?, ?, ?, ?)'),
    get: db.prepare('SELECT * FROM jobs WHERE id = ?'),
    latest: db.prepare('SELECT * FROM jobs WHERE source = ? AND kind = ? ORDER BY id DESC LIMIT 1'),
    count: db.prepare('SELECT kind, state, COUNT(*) AS count FROM jobs WHERE created_ms >= ? GROUP BY kind, state'),
    leftovers: db.prepare("SELECT * FROM jobs WHERE state IN ('queued', 'running') ORDER BY id"),
    expire: db.prepare("DELETE FROM jobs WHERE created_ms < ? AND state NOT IN ('queued', 'running')"),
  };
  const row = (id: number | bigint): Row | undefined => q.get.get(id) as Row | undefined;
  // Statements by SQL text: an update sets one of a handful of column sets, and a list one of
  // the filter combinations a console uses; preparing each call cost more than running it
  // (8% of the main thread under the polling benchmark). Bounded: the SQL is built from a fixed
  // set of clauses, never from values.
  const statements = new Map<string, Database.Statement<unknown[]>>();
  const cached = (sql: string): Database.Statement<unknown[]> => {
    let st = statements.get(sql);
    if (!st) statements.set(sql, (st = db.prepare(sql)));
    return st;
  };
  const updateStatement = (set: string): Database.Statement<unknown[]> => cached(`UPDATE jobs SET ${set} WHERE id = ?`);

  const store: JobStore = {
    insert(job: NewJob) {
      const r = q.insert.run(job.kind, 'queued', job.source ?? null, job.trigger, JSON.stringify(job.params), Date.parse(job.createdAt));
      return toJob(row(r.lastInsertRowid)!);
    },
    update(id: string, patch: JobPatch) {
      const cols: string[] = [];
      const vals: (string | number | null)[] = [];
      const set = (col: string, v: string | number | null): void => {
        cols.push(`${col} = ?`);
        vals.push(v);
      };
      if (patch.state !== undefined) set('state', patch.state);
      if (patch.startedAt !== undefined) set('started_ms', ms(patch.startedAt));
      if (patch.finishedAt !== undefined) set('finished_ms', ms(patch.finishedAt));
      if (patch.progress !== undefined) set('progress', json(patch.progress));
      if (patch.result !== undefined) set('result', json(patch.result));
      if (patch.error !== undefined) set('error', json(patch.error));
      const n = /^\d+$/.test(id) ? Number(id) : -1;
      if (cols.length > 0) updateStatement(cols.join(', ')).run(...vals, n);
      const r = row(n);
      if (!r) throw new CairnError('E_JOB_NOT_FOUND', `no job ${id}`);
      return toJob(r);
    },
    get(id) {
      if (!/^\d{1,15}$/.test(id)) return undefined;
      const r = row(Number(id));
      return r ? toJob(r) : undefined;
    },
    list(filter: JobFilter, limit: number, cursor?: string) {
      const where: string[] = [];
      const vals: (string | number)[] = [];
      if (cursor !== undefined) {
        where.push('id < ?');
        vals.push(decodeCursor(cursor));
      }
      if (filter.states !== undefined) {
        // deduplicated and sorted: the statement cache sees one SQL text per set of states
        const states = [...new Set(filter.states)].sort();
        where.push(`state IN (${states.map(() => '?').join(', ') || "''"})`);
        vals.push(...states);
      }
      if (filter.kind !== undefined) {
        where.push('kind = ?');
        vals.push(filter.kind);
      }
      if (filter.source !== undefined) {
        where.push('source = ?');
        vals.push(filter.source);
      }
      if (filter.sinceMs !== undefined) {
        where.push('created_ms >= ?');
        vals.push(filter.sinceMs);
      }
      const sql = `SELECT * FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
      const rows = cached(sql).all(...vals, limit + 1) as Row[];
      const jobs = rows.slice(0, limit).map(toJob);
      return { jobs, ...(rows.length > limit ? { next: encodeCursor(jobs[jobs.length - 1]!.id) } : {}) };
    },
    latest(source, kind, states) {
      if (states === undefined) {
        const r = q.latest.get(source, kind) as Row | undefined;
        return r ? toJob(r) : undefined;
      }
      return store.list({ source, kind, states }, 1).jobs[0];
    },
    countSince(sinceMs) {
      return (q.count.all(sinceMs) as { kind: JobKind; state: JobState; count: number }[]).map((r) => ({ kind: r.kind, state: r.state, count: Number(r.count) }) satisfies JobCount);
    },
    interruptLeftovers(finishedAt, reason) {
      const tx = db.transaction(() => (q.leftovers.all() as Row[]).map((r) => store.update(String(r.id), { state: 'interrupted', finishedAt, error: { code: 'E_INTERRUPTED', message: reason } })));
      return tx();
    },
    expire(beforeMs) {
      return q.expire.run(beforeMs).changes;
    },
    close() {
      if (db.open) db.close();
    },
  };
  return store;
}

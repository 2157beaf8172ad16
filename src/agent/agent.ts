import { mkdir, readFile } from 'node:fs/promises';
import cron, { type ScheduledTask } from 'node-cron';
import { type Logger, pino } from 'pino';
import { createLocalStore } from '../backend/local-store.js';
import { CairnError, isAbortError } from '../core/errors.js';
import type { Credential } from '../core/keys.js';
import { backup } from '../engine/backup.js';
import { createKeyFile, hostEnv } from './host-env.js';
import { withLock } from '../repo/locks.js';
import { type Repository, initRepository, openRepository } from '../repo/repository.js';
import type { AgentConfig, SourceConfig } from './config.js';

/** How long shutdown waits for the running backup to stop at a safe point. */
export const SHUTDOWN_DEADLINE_MS = 10_000;

/** Options of startAgent. */
export interface AgentOptions {
  readonly config: AgentConfig;
  readonly logger?: Logger;
  readonly program: string;
}

/** A running agent. */
export interface RunningAgent {
  /** Stops scheduling, cancels the running backup at a safe point and waits for it. */
  stop(reason: string): Promise<void>;
  /** Settles when the agent has stopped. */
  readonly stopped: Promise<void>;
}

/**
 * The agent: opens (or on first start creates) the repository, backs up every source at start
 * and then on its cron schedules, one backup at a time (one writer per repository), and on stop
 * cancels the running backup at a safe point (what was uploaded is indexed and reused by the next
 * run). Job history, the HTTP API and the change journal are not part of it yet.
 */
export async function startAgent(opts: AgentOptions): Promise<RunningAgent> {
  const { config } = opts;
  const log = opts.logger ?? pino({ level: config.logLevel, redact: ['password', '*.password'] });
  await mkdir(config.stateDir, { recursive: true, mode: 0o700 });
  const repo = await openOrCreate(config, log);
  log.info({ repository: repo.store.location, sources: config.sources.map((s) => s.name) }, 'agent started');

  const controller = new AbortController();
  const queue: SourceConfig[] = [];
  let running: Promise<void> | undefined;
  let stopping = false;
  let jobs = 0;

  const runNext = (): void => {
    if (running || stopping) return;
    const source = queue.shift();
    if (!source) return;
    const jobLog = log.child({ job: ++jobs, source: source.name });
    running = runBackup(repo, source, config, opts.program, jobLog, controller.signal).finally(() => {
      running = undefined;
      runNext();
    });
  };
  const enqueue = (source: SourceConfig, why: string): void => {
    if (stopping || queue.includes(source)) return;
    log.debug({ source: source.name, why }, 'backup queued');
    queue.push(source);
    runNext();
  };

  const tasks: ScheduledTask[] = [];
  for (const source of config.sources) {
    for (const expr of source.schedule) tasks.push(cron.schedule(expr, () => enqueue(source, `schedule ${expr}`), { name: `${source.name}: ${expr}`, noOverlap: true }));
    enqueue(source, 'start');
  }

  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  return {
    stopped,
    async stop(reason) {
      if (stopping) return stopped;
      stopping = true;
      log.info({ reason }, 'agent stopping');
      for (const t of tasks) await t.destroy();
      queue.length = 0;
      controller.abort(new CairnError('E_CANCELLED', `agent stopping (${reason})`));
      const deadline = new Promise<'late'>((r) => setTimeout(() => r('late'), SHUTDOWN_DEADLINE_MS).unref());
      if ((await Promise.race([running ?? Promise.resolve(), deadline])) === 'late') log.warn({ deadlineMs: SHUTDOWN_DEADLINE_MS }, 'running backup did not stop in time');
      log.info('agent stopped');
      resolveStopped();
      return stopped;
    },
  };
}

async function runBackup(repo: Repository, source: SourceConfig, config: AgentConfig, program: string, log: Logger, signal: AbortSignal): Promise<void> {
  log.info({ paths: source.paths }, 'backup started');
  try {
    const result = await withLock(
      repo,
      `backup of ${source.name} by agent ${config.agentName}`,
      false,
      async (lockSignal) => {
        // read under the lock, and anew for every run: other agents may share the repository
        await repo.loadIndex({ signal: lockSignal });
        return backup(repo, {
          paths: source.paths,
          excludes: source.excludes ?? [],
          oneFileSystem: source.oneFileSystem ?? false,
          tags: source.tags ?? [],
          source: { name: source.name, kind: 'folder' },
          agent: config.agentName,
          program,
          signal: lockSignal,
          progress: { add() {}, setTotal() {}, error: (path, err) => log.warn({ path, err }, 'path skipped') },
        });
      },
      signal,
    );
    const s = result.snapshot.summary;
    log.info({ snapshotId: result.snapshotId, filesNew: s.filesNew, filesChanged: s.filesChanged, filesUnmodified: s.filesUnmodified, bytesRead: s.bytesRead, bytesAdded: s.bytesAdded, durationMs: s.durationMs, errors: result.errors.length }, result.errors.length ? 'backup finished with unreadable paths' : 'backup succeeded');
  } catch (err) {
    if (signal.aborted || isAbortError(err)) log.warn('backup cancelled: what was uploaded is reused by the next run');
    else log.error({ err }, 'backup failed');
  }
}

async function openOrCreate(config: AgentConfig, log: Logger): Promise<Repository> {
  const store = createLocalStore(config.repository.path);
  const env = hostEnv();
  const cred = await credential(config, log);
  try {
    return await openRepository(store, cred, env);
  } catch (err) {
    if (!(err instanceof CairnError && err.code === 'E_REPO_NOT_FOUND')) throw err;
  }
  await mkdir(config.repository.path, { recursive: true });
  const repo = await initRepository(store, cred, env);
  log.info({ repository: store.location, id: repo.config.id }, 'created repository');
  return repo;
}

async function credential(config: AgentConfig, log: Logger): Promise<Credential> {
  const r = config.repository;
  if (r.keyFile) {
    try {
      return { keyFileBytes: await readFile(r.keyFile) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new CairnError('E_KEY', `cannot read key file ${r.keyFile}: ${(err as Error).message}`, { cause: err });
    }
    const exists = await readFile(`${config.repository.path}/cairn.json`).then(() => true, () => false);
    if (exists) throw new CairnError('E_KEY', `key file ${r.keyFile} is missing and the repository at ${r.path} already exists`, { hint: 'restore the key file from your copy; a new key cannot open existing backups' });
    const bytes = await createKeyFile(r.keyFile);
    log.warn({ keyFile: r.keyFile }, `created key file ${r.keyFile} (mode 0600): it is the only way to read these backups; copy it somewhere safe now, losing it loses the backups`);
    return { keyFileBytes: bytes };
  }
  if (r.passwordFile) return { passphrase: (await readFile(r.passwordFile, 'utf8')).replace(/\r?\n$/, '') };
  const pw = r.passwordEnv ? process.env[r.passwordEnv] : undefined;
  if (!pw) throw new CairnError('E_CONFIG_INVALID', `environment variable ${r.passwordEnv} (repository.passwordEnv) is not set`);
  return { passphrase: pw };
}

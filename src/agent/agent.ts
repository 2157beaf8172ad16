import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { type Logger, pino } from 'pino';
import { buildApp } from '../api/app.js';
import { tokenChecker } from '../api/auth.js';
import { createMetrics } from '../api/metrics.js';
import { createLocalStore } from '../backend/local-store.js';
import { CairnError } from '../core/errors.js';
import { type ChangeJournal, createChangeJournal } from '../jobs/change-journal.js';
import { type Clock, systemClock } from '../jobs/clock.js';
import { JobManager } from '../jobs/job-manager.js';
import { FINAL_STATES } from '../jobs/job.js';
import { admitJob, createRunners, type SourceSpec } from '../jobs/runners.js';
import { Scheduler } from '../jobs/scheduler.js';
import { openSqliteJobStore } from '../jobs/sqlite-job-store.js';
import { type Repository, initRepository, openRepository } from '../repo/repository.js';
import { AgentStatusProvider } from './agent-status.js';
import { type AgentConfig, loadAgentConfig } from './config.js';
import { hostEnv } from './host-env.js';
import { apiTokens, repositoryCredential } from './secrets.js';

/** How long shutdown waits for the running job to stop at a safe point. */
export const SHUTDOWN_DEADLINE_MS = 10_000;
/** How often the slow health facts (repository reachable, disk space, source paths) are probed. */
const PROBE_EVERY_MS = 30_000;
/** How often job history older than agent.jobHistoryDays is deleted. */
const EXPIRE_EVERY_MS = 6 * 3600_000;
/** A change-triggered backup waits this long after the last change unless the source says. */
const DEFAULT_DEBOUNCE_SECONDS = 60;

/** Options of startAgent. */
export interface AgentOptions {
  readonly config: AgentConfig;
  readonly logger?: Logger;
  readonly program: string;
  readonly version: string;
  readonly clock?: Clock;
}

/** A running agent. */
export interface RunningAgent {
  /** Where the API listens (undefined when it is disabled). */
  readonly url: string | undefined;
  /** Re-reads the config file: sources, schedules, hooks, watchers and tokens change in place;
   *  a changed repository, state folder or API address needs a restart (logged). A config with
   *  problems is refused and the running one kept. */
  reload(): Promise<void>;
  /** Stops scheduling, cancels the running job at a safe point, closes the API and database. */
  stop(reason: string): Promise<void>;
  /** Settles when the agent has stopped. */
  readonly stopped: Promise<void>;
}

/**
 * The agent: the composition root of the daemon. It opens (or on first start creates) the
 * repository and key, opens the job history, marks jobs a crash left running as interrupted,
 * runs overdue backups, then backs up on schedules and on changes, serves the API, and on stop
 * cancels the running job at a safe point (what was uploaded is indexed and reused next time).
 */
export async function startAgent(opts: AgentOptions): Promise<RunningAgent> {
  let config = opts.config;
  const clock = opts.clock ?? systemClock;
  const log = opts.logger ?? createAgentLogger(config.logLevel);
  await mkdir(config.stateDir, { recursive: true, mode: 0o700 });
  const repo = await openOrCreate(config, log);
  let tokens = await apiTokens(config.api, log);
  let roleOf = tokenChecker(tokens);
  const store = openSqliteJobStore(path.join(config.stateDir, 'jobs.db'));
  for (const j of store.interruptLeftovers(new Date(clock.now()).toISOString(), 'the agent stopped (crash, kill or power loss) while this job was queued or running')) {
    log.warn({ jobId: j.id, kind: j.kind, source: j.source }, 'job left by the previous run marked interrupted; the next backup reuses what it uploaded');
  }
  const expire = (): void => void log.debug({ deleted: store.expire(clock.now() - config.jobHistoryDays * 86_400_000) }, 'job history expired');
  expire();

  const sourceByName = (): Map<string, SourceSpec> => new Map(config.sources.map((s) => [s.name, s]));
  let sources = sourceByName();
  const journals = new Map<string, ChangeJournal>();
  const metrics = createMetrics({
    lastSuccessMs: () => [...sources.keys()].flatMap((name) => {
      const j = store.latest(name, 'backup', ['succeeded']);
      return j?.finishedAt ? [{ source: name, ms: Date.parse(j.finishedAt) }] : [];
    }),
    running: () => (jobs.running() ? 1 : 0),
    queued: () => jobs.queued,
  });
  const jobs: JobManager = new JobManager({
    store,
    clock,
    logger: log,
    admit: admitJob((n) => sources.get(n)),
    runners: createRunners({ repo, source: (n) => sources.get(n), agentName: config.agentName, program: opts.program, restoreOwners: process.getuid?.() === 0, scanPlan: (n) => journals.get(n)?.plan() }),
    onFinished: (job) => {
      metrics.observe(job);
      if (job.kind === 'backup' && FINAL_STATES.has(job.state)) status.invalidateSnapshots();
    },
  });
  const submitBackup = (source: string, trigger: 'start' | 'schedule' | 'overdue' | 'change'): void => {
    try {
      jobs.submit('backup', { source }, trigger);
    } catch (err) {
      log.warn({ err, source, trigger }, 'backup not queued');
    }
  };
  const scheduler = new Scheduler({ clock, lastRunMs: (s) => { const j = store.latest(s, 'backup'); return j ? Date.parse(j.createdAt) : undefined; }, onDue: submitBackup });
  const status = new AgentStatusProvider({
    agentName: config.agentName,
    version: opts.version,
    repo,
    store,
    jobs,
    clock,
    stateDir: config.stateDir,
    localRepoPath: config.repository.path,
    sources: () => [...sources.values()],
    nextRunMs: (s) => scheduler.nextRunMs(s),
    watcher: (s) => journals.get(s),
  });
  await status.probe();

  const syncJournals = async (): Promise<void> => {
    for (const [name, j] of journals) {
      const s = sources.get(name);
      if (!s?.watch?.enabled || JSON.stringify(s) !== JSON.stringify(watchedAs.get(name))) {
        await j.close();
        journals.delete(name);
      }
    }
    for (const s of sources.values()) {
      if (!s.watch?.enabled || journals.has(s.name)) continue;
      const j = createChangeJournal({ paths: s.paths, excludes: s.excludes ?? [], debounceMs: (s.watch.debounceSeconds ?? DEFAULT_DEBOUNCE_SECONDS) * 1000, onSettled: () => submitBackup(s.name, 'change'), logger: log.child({ source: s.name, component: 'watcher' }) });
      journals.set(s.name, j);
      watchedAs.set(s.name, s);
      j.start().catch((err: unknown) => log.warn({ err, source: s.name }, 'change watcher failed; backups of this source scan everything'));
    }
  };
  const watchedAs = new Map<string, SourceSpec>();
  await syncJournals();

  const app = config.api.enabled ? await buildApp({ jobs, status, metrics, roleOf: (t) => roleOf(t), tokensConfigured: () => tokens.length > 0, version: opts.version, logger: log, ...(config.api.tls ? { tls: await readTls(config) } : {}) }) : undefined;
  let url: string | undefined;
  if (app) {
    await app.listen({ host: config.api.host, port: config.api.port });
    const a = app.server.address() as AddressInfo;
    url = `${config.api.tls ? 'https' : 'http'}://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }
  log.info({ repository: repo.store.location, sources: [...sources.keys()], api: url ?? 'disabled', stateDir: config.stateDir }, 'agent started');
  scheduler.start([...sources.values()]);

  const timers = [setInterval(() => void status.probe().catch((err: unknown) => log.warn({ err }, 'health probe failed')), PROBE_EVERY_MS).unref(), setInterval(expire, EXPIRE_EVERY_MS).unref()];
  let stopping: Promise<void> | undefined;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));

  return {
    url,
    stopped,
    async reload() {
      let next: AgentConfig;
      try {
        next = await loadAgentConfig(config.file);
        tokens = await apiTokens(next.api, log);
        roleOf = tokenChecker(tokens);
      } catch (err) {
        log.error({ err }, 'config not reloaded: the running config stays in force');
        return;
      }
      const fixed = (c: AgentConfig): Record<string, unknown> => ({ repository: c.repository, stateDir: c.stateDir, api: { ...c.api, tokens: [] } });
      const [was, now] = [fixed(config), fixed(next)];
      const restartNeeded = Object.keys(was).filter((k) => JSON.stringify(was[k]) !== JSON.stringify(now[k]));
      if (restartNeeded.length) log.warn({ keys: restartNeeded }, `config reloaded, but ${restartNeeded.join(', ')} changed: restart the agent to apply those`);
      config = { ...next, repository: config.repository, stateDir: config.stateDir, api: { ...config.api, tokens: next.api.tokens } };
      log.level = next.logLevel;
      sources = sourceByName();
      scheduler.update([...sources.values()]);
      await syncJournals();
      await status.probe();
      log.info({ sources: [...sources.keys()] }, 'config reloaded');
    },
    stop(reason) {
      stopping ??= (async () => {
        log.info({ reason }, 'agent stopping');
        scheduler.stop();
        for (const t of timers) clearInterval(t);
        const inTime = await jobs.stop(`agent stopping (${reason})`, SHUTDOWN_DEADLINE_MS - 1000);
        if (!inTime) log.warn({ deadlineMs: SHUTDOWN_DEADLINE_MS }, 'the running job did not stop in time; it will be marked interrupted at the next start');
        await Promise.all([...journals.values()].map((j) => j.close()));
        await app?.close();
        if (inTime) store.close();
        log.info('agent stopped');
        resolveStopped();
      })();
      return stopping;
    },
  };
}

/** Keys whose values never reach the log, wherever they appear. */
const REDACT = ['password', 'passphrase', 'token', 'secret', 'keyFileBytes', 'authorization'].flatMap((k) => [k, `*.${k}`, `*.*.${k}`]);

/** The agent's logger: pino JSON lines on stdout (journald and log shippers read them), pretty
 *  and coloured when stdout is a terminal; secrets redacted. */
export function createAgentLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const options = { level, redact: { paths: REDACT, censor: '[redacted]' } };
  if (destination) return pino(options, destination);
  const pretty = process.stdout.isTTY === true;
  return pino({ ...options, ...(pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } } : {}) });
}

async function readTls(config: AgentConfig): Promise<{ key: Buffer; cert: Buffer }> {
  const t = config.api.tls!;
  try {
    return { key: await readFile(t.keyFile), cert: await readFile(t.certFile) };
  } catch (err) {
    throw new CairnError('E_CONFIG_INVALID', `api.tls: cannot read ${(err as NodeJS.ErrnoException).path ?? 'the key or certificate'}: ${(err as Error).message}`, { cause: err });
  }
}

async function openOrCreate(config: AgentConfig, log: Logger): Promise<Repository> {
  const store = createLocalStore(config.repository.path);
  const env = hostEnv();
  const cred = await repositoryCredential(config, log);
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


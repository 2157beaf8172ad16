import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { type Logger, pino } from 'pino';
import { buildApp } from '../api/app.js';
import { type Role, type TokenEntry, tokenChecker } from '../api/auth.js';
import { type Metrics, createMetrics } from '../api/metrics.js';
import { createLocalStore } from '../backend/local-store.js';
import { CairnError } from '../core/errors.js';
import { type Clock, systemClock } from '../jobs/clock.js';
import { JobManager } from '../jobs/job-manager.js';
import type { JobStore } from '../jobs/job-store.js';
import { admitJob, createRunners, type SourceSpec } from '../jobs/runners.js';
import { Scheduler } from '../jobs/scheduler.js';
import { openSqliteJobStore } from '../jobs/sqlite-job-store.js';
import { removeLocks } from '../repo/locks.js';
import { type Repository, initRepository, openRepository } from '../repo/repository.js';
import { AgentStatusProvider } from './agent-status.js';
import { WorkerEngine } from './worker-engine.js';
import type { Credential } from '../core/keys.js';
import { SourceJournals } from './journals.js';
import { type AgentConfig, loadAgentConfig } from './config.js';
import { hostEnv } from './host-env.js';
import { apiTokens, repositoryCredential } from './secrets.js';

/** How long shutdown waits for the running job to stop at a safe point. */
export const SHUTDOWN_DEADLINE_MS = 10_000;
/** How often the slow health facts (repository reachable, disk space, source paths) are probed. */
const PROBE_EVERY_MS = 30_000;
/** How often job history older than agent.jobHistoryDays is deleted. */
const EXPIRE_EVERY_MS = 6 * 3600_000;

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
  const clock = opts.clock ?? systemClock;
  const log = opts.logger ?? createAgentLogger(opts.config.logLevel);
  await mkdir(opts.config.stateDir, { recursive: true, mode: 0o700 });
  const { repo, credential } = await openOrCreate(opts.config, log);
  const tokens = await apiTokens(opts.config.api, log);
  const store = openSqliteJobStore(path.join(opts.config.stateDir, 'jobs.db'));
  // the main thread takes no repository locks: after a worker crash, every lock naming this
  // process was the worker's, and is removed at once
  const clearWorkerLocks = (): void =>
    void removeLocks(repo.store, { host: repo.env.host, now: repo.env.now, isAlive: (pid) => pid !== process.pid && repo.env.isAlive(pid), all: false })
      .then((n) => n && log.warn({ locks: n }, 'removed the locks of the crashed engine worker'))
      .catch((err: unknown) => log.warn({ err }, 'cannot remove the locks of the crashed engine worker'));
  const engine = new WorkerEngine({ repoPath: opts.config.repository.path, credential, agentName: opts.config.agentName, program: opts.program }, log, clearWorkerLocks);
  const agent = new Agent(opts, clock, log, repo, store, tokens, engine);
  try {
    await agent.start();
  } catch (err) {
    // release what was opened (watchers, the database) before the error reaches the operator
    await agent.stop('it could not start').catch(() => undefined);
    throw err;
  }
  return agent;
}

/** The parts of a running agent and how they are wired. */
class Agent implements RunningAgent {
  url: string | undefined;
  readonly stopped: Promise<void>;
  #config: AgentConfig;
  #sources: Map<string, SourceSpec>;
  #tokens: TokenEntry[];
  #roleOf: (token: string) => Role | undefined;
  readonly #o: AgentOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #store: JobStore;
  readonly #metrics: Metrics;
  readonly #jobs: JobManager;
  readonly #scheduler: Scheduler;
  readonly #status: AgentStatusProvider;
  readonly #journals: SourceJournals;
  readonly #timers: NodeJS.Timeout[] = [];
  #app: Awaited<ReturnType<typeof buildApp>> | undefined;
  #stopping: Promise<void> | undefined;
  #resolveStopped!: () => void;

  readonly #engine: WorkerEngine;

  constructor(opts: AgentOptions, clock: Clock, log: Logger, repo: Repository, store: JobStore, tokens: TokenEntry[], engine: WorkerEngine) {
    this.#engine = engine;
    this.#o = opts;
    this.#config = opts.config;
    this.#clock = clock;
    this.#log = log;
    this.#store = store;
    this.#tokens = tokens;
    this.#roleOf = tokenChecker(tokens);
    this.#sources = sourcesOf(opts.config);
    this.stopped = new Promise((r) => (this.#resolveStopped = r));
    this.#journals = new SourceJournals(log, (s) => this.#submitBackup(s, 'change'));
    this.#metrics = createMetrics({
      lastSuccessMs: () => [...this.#sources.keys()].flatMap((name) => {
        const j = store.latest(name, 'backup', ['succeeded']);
        return j?.finishedAt ? [{ source: name, ms: Date.parse(j.finishedAt) }] : [];
      }),
      running: () => (this.#jobs.running() ? 1 : 0),
      queued: () => this.#jobs.queued,
    });
    this.#jobs = new JobManager({
      store,
      clock,
      logger: log,
      admit: admitJob((n) => this.#sources.get(n), () => this.#config.restoreRoots),
      runners: createRunners({
        engine,
        source: (n) => this.#sources.get(n),
        restoreOwners: process.getuid?.() === 0,
        restoreRoots: () => this.#config.restoreRoots,
        scanPlan: (n) => this.#journals.get(n)?.plan(),
        secretEnv: secretEnvOf(opts.config),
      }),
      onFinished: (job) => {
        this.#metrics.observe(job);
        this.#status.invalidate(job.kind === 'backup');
      },
    });
    // the last backup that ran to an end counts; one cut short by a restart does not, so a
    // restart in the middle of a scheduled run reruns it at start
    const lastRunMs = (s: string): number | undefined => {
      const j = store.latest(s, 'backup', ['succeeded', 'failed']);
      return j ? Date.parse(j.createdAt) : undefined;
    };
    this.#scheduler = new Scheduler({ clock, lastRunMs, onDue: (s, why) => this.#submitBackup(s, why) });
    this.#status = new AgentStatusProvider({
      agentName: opts.config.agentName,
      version: opts.version,
      repo,
      store,
      jobs: this.#jobs,
      clock,
      stateDir: opts.config.stateDir,
      localRepoPath: opts.config.repository.path,
      sources: () => [...this.#sources.values()],
      nextRunMs: (s) => this.#scheduler.nextRunMs(s),
      watcher: (s) => this.#journals.get(s),
    });
  }

  /** Recovers what a crash left, starts the watchers and the API, then the schedules. */
  async start(): Promise<void> {
    const now = new Date(this.#clock.now()).toISOString();
    for (const j of this.#store.interruptLeftovers(now, 'the agent stopped (crash, kill or power loss) while this job was queued or running')) {
      this.#metrics.observe(j);
      this.#log.warn({ jobId: j.id, kind: j.kind, source: j.source }, 'job left by the previous run marked interrupted; the next backup reuses what it uploaded');
    }
    this.#expire();
    await this.#status.probe();
    await this.#journals.sync(this.#sources.values());
    await this.#startApi();
    this.#log.info({ repository: this.#status.repositoryLocation, sources: [...this.#sources.keys()], api: this.url ?? 'disabled', stateDir: this.#config.stateDir }, 'agent started');
    this.#scheduler.start([...this.#sources.values()]);
    const probe = (): void => void this.#status.probe().catch((err: unknown) => this.#log.warn({ err }, 'health probe failed'));
    this.#timers.push(setInterval(probe, PROBE_EVERY_MS).unref(), setInterval(() => this.#expire(), EXPIRE_EVERY_MS).unref());
  }

  async #startApi(): Promise<void> {
    const c = this.#config;
    if (!c.api.enabled) return;
    this.#app = await buildApp({
      jobs: this.#jobs,
      status: this.#status,
      metrics: this.#metrics,
      roleOf: (t) => this.#roleOf(t),
      tokensConfigured: () => this.#tokens.length > 0,
      version: this.#o.version,
      logger: this.#log,
      ...(c.api.tls ? { tls: await readTls(c) } : {}),
    });
    try {
      await this.#app.listen({ host: c.api.host, port: c.api.port });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'EADDRINUSE' ? 'the address is in use (is another agent running?)' : code === 'EACCES' ? 'permission denied (ports below 1024 need privileges)' : (err as Error).message;
      throw new CairnError('E_IO', `cannot serve the API on ${c.api.host}:${c.api.port}: ${why}`, { cause: err, hint: 'stop the other process, or set api.port (or api.enabled: false) in the config' });
    }
    const a = this.#app.server.address() as AddressInfo;
    this.url = `${c.api.tls ? 'https' : 'http'}://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  #submitBackup(source: string, trigger: 'start' | 'schedule' | 'overdue' | 'change'): void {
    try {
      this.#jobs.submit('backup', { source }, trigger);
    } catch (err) {
      this.#log.warn({ err, source, trigger }, 'backup not queued');
    }
  }

  #expire(): void {
    try {
      const deleted = this.#store.expire(this.#clock.now() - this.#config.jobHistoryDays * 86_400_000);
      if (deleted) this.#log.info({ deleted, keptDays: this.#config.jobHistoryDays }, 'old job history deleted');
    } catch (err) {
      this.#log.warn({ err }, 'cannot delete old job history');
    }
  }

  async reload(): Promise<void> {
    if (this.#stopping) return;
    let next: AgentConfig;
    let tokens: TokenEntry[];
    try {
      next = await loadAgentConfig(this.#config.file);
      tokens = await apiTokens(next.api, this.#log);
    } catch (err) {
      this.#log.error({ err }, 'config not reloaded: the running config stays in force');
      return;
    }
    if (this.#stopping) return;
    const fixed = (c: AgentConfig): Record<string, unknown> => ({ repository: c.repository, stateDir: c.stateDir, agentName: c.agentName, api: { ...c.api, tokens: [] } });
    const [was, now] = [fixed(this.#config), fixed(next)];
    const restartNeeded = Object.keys(was).filter((k) => JSON.stringify(was[k]) !== JSON.stringify(now[k]));
    if (restartNeeded.length) this.#log.warn({ keys: restartNeeded }, `config reloaded, but ${restartNeeded.join(', ')} changed: restart the agent to apply those`);
    this.#config = { ...next, repository: this.#config.repository, stateDir: this.#config.stateDir, agentName: this.#config.agentName, api: { ...this.#config.api, tokens: next.api.tokens } };
    this.#tokens = tokens;
    this.#roleOf = tokenChecker(tokens);
    this.#log.level = next.logLevel;
    this.#sources = sourcesOf(this.#config);
    this.#scheduler.update([...this.#sources.values()]);
    await this.#journals.sync(this.#sources.values());
    await this.#status.probe();
    this.#log.info({ sources: [...this.#sources.keys()] }, 'config reloaded');
  }

  stop(reason: string): Promise<void> {
    this.#stopping ??= (async () => {
      this.#log.info({ reason }, 'agent stopping');
      this.#scheduler.stop();
      for (const t of this.#timers) clearInterval(t);
      const inTime = await this.#jobs.stop(`agent stopping (${reason})`, SHUTDOWN_DEADLINE_MS - 2000);
      if (!inTime) this.#log.warn({ deadlineMs: SHUTDOWN_DEADLINE_MS }, 'the running job did not stop in time; it will be marked interrupted at the next start');
      await this.#journals.close();
      if (inTime) await this.#engine.close();
      await this.#app?.close();
      if (inTime) this.#store.close();
      this.#log.info('agent stopped');
      this.#resolveStopped();
    })();
    return this.#stopping;
  }
}

function sourcesOf(config: AgentConfig): Map<string, SourceSpec> {
  return new Map(config.sources.map((s) => [s.name, s]));
}

/** Environment variables that hold the config's secrets: hooks must not see them. */
function secretEnvOf(config: AgentConfig): string[] {
  return [config.repository.passwordEnv, ...config.api.tokens.map((t) => t.env)].filter((v): v is string => v !== undefined);
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

async function openOrCreate(config: AgentConfig, log: Logger): Promise<{ repo: Repository; credential: Credential }> {
  const store = createLocalStore(config.repository.path);
  const env = hostEnv();
  const credential = await repositoryCredential(config, log);
  try {
    return { repo: await openRepository(store, credential, env), credential };
  } catch (err) {
    if (!(err instanceof CairnError && err.code === 'E_REPO_NOT_FOUND')) throw err;
  }
  await mkdir(config.repository.path, { recursive: true });
  const repo = await initRepository(store, credential, env);
  log.info({ repository: store.location, id: repo.config.id }, 'created repository');
  return { repo, credential };
}


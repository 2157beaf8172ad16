// The agent's API under polling while a backup runs (issue 3): A/B rounds of the agent's first backup of
// the corpus, A without polling, B with autocannon at a fixed rate on /health, /v1/jobs and /v1/summary.
// Usage: npx tsx native-bench/polling.ts [--small] [--rounds N] [--rate R] [--cpu-prof] [--no-append] ...
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, cpSync, createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { corpusParams, CORPUS_OPTIONS, isMain, parseCount } from './lib/args.js';
import { assertOutsideRepo, DEFAULT, defaultCorpusDir, ensureCorpus, SMALL, workDir, type CorpusParams, type Manifest } from './lib/corpus-gen.js';
import { capture } from './lib/exec.js';
import { machine } from './lib/report.js';
import { walk, warm, type TreeListing } from './lib/tree.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const ROOT = resolve(HERE, '..');
const RESULTS = join(HERE, 'RESULTS.md');
/** The build is copied here before the first round, so a rebuild of dist/ during the run cannot split A from B. */
const BUILD_COPY = join(HERE, 'work', 'polling-build');
const ROUTES = ['/health', '/v1/jobs', '/v1/summary'] as const;
const TARGET_P99_MS = 50;
const TARGET_LOSS = 0.1;

const USAGE = `usage: npx tsx native-bench/polling.ts [options]
  --small                 20k files / 300 MB corpus (default: 150k files / 3 GB)
  --files N --bytes B --seed S   corpus parameters (B accepts k/M/G suffixes)
  --corpus DIR            corpus directory (default under the work dir, reused if its corpus.json matches)
  --work DIR              work dir for corpora and the rounds' agent homes (default $CAIRN_BENCH_DIR or /tmp/cairn-bench)
  --rounds N              A/B pairs, run alternately A B A B ... (default 3, at least 2)
  --rate R                polling requests per second in B rounds (default 1000)
  --connections C         autocannon connections (default 10)
  --idle-seconds S        after each B round's backup, poll the idle agent S more seconds as a baseline (default 10, 0: off)
  --cpu-prof              after the rounds, one more B round (no idle polling after the job) with the agent under
                          node --cpu-prof (not in the medians);
                          prints the top self-time functions of the agent's main thread
  --wait-idle SECONDS     before each round, wait up to SECONDS for the 1-minute load average to drop below 0.5
  --keep                  keep each round's agent home (repo, state, logs) under <work>/polling/
  --no-append             print the results only; do not append them to native-bench/RESULTS.md`;

const log = (s: string): void => console.error(`[polling] ${s}`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- autocannon (CommonJS, no bundled types): the part of its API used here ----

interface AcHistogram {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  average: number;
}
interface AcResult {
  latency: AcHistogram;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** seconds */
  duration: number;
  statusCodeStats: Record<string, { count: number }>;
}
interface AcClient {
  requestIterator?: { currentRequest?: { path?: string } };
  on(event: 'request', fn: () => void): void;
}
interface AcInstance {
  stop(): void;
  on(event: 'response', fn: (client: AcClient, status: number, bytes: number, ms: number) => void): void;
}
type Autocannon = (opts: Record<string, unknown>, cb: (err: Error | null, result: AcResult) => void) => AcInstance;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

// ---- statistics ----

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i] ?? NaN;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
}

interface Latency {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

function latencyOf(samples: number[]): Latency {
  const s = Float64Array.from(samples).sort();
  const a = Array.from(s);
  return { n: a.length, p50: quantile(a, 0.5), p90: quantile(a, 0.9), p99: quantile(a, 0.99), max: a[a.length - 1] ?? NaN };
}

// ---- the agent ----

interface Job {
  id: string;
  state: string;
  startedAt?: string;
  finishedAt?: string;
  result?: { bytesRead?: number; bytesTotal?: number; durationMs?: number; filesNew?: number; errors?: number };
  error?: { message?: string };
}

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled', 'interrupted']);

interface Agent {
  child: ChildProcess;
  api: string;
  token: string;
  startSeconds: number;
  exited: Promise<number | null>;
}

/** A daily schedule 12 hours from now: it never fires during a run, and unlike a yearly one ('0 0 1 1 *')
 *  it keeps the agent's "is the source late?" check cheap once a backup succeeded (that check walks the
 *  cron schedule back to the previous fire time, which for a yearly schedule costs milliseconds). */
export function farSchedule(now = new Date()): string {
  return `${now.getMinutes()} ${(now.getHours() + 12) % 24} * * *`;
}

function writeConfig(home: string, src: string, schedule: string): string {
  // JSON is YAML: paths are relative to the config file, i.e. inside the round's home.
  const config = {
    agent: { stateDir: 'state' },
    repository: { path: 'repo', keyFile: 'cairn.key' },
    api: { host: '127.0.0.1', port: 0, tokens: [{ role: 'reader', file: 'reader.token' }, { role: 'operator', file: 'operator.token' }] },
    sources: [{ name: 'corpus', kind: 'folder', paths: [src], schedule: [schedule] }],
  };
  const file = join(home, 'agent.yaml');
  writeFileSync(file, JSON.stringify(config, null, 2) + '\n');
  return file;
}

/** Start the agent; resolves once it logged "agent started" (its API URL) and wrote the reader token. */
async function startAgent(cli: string, home: string, config: string, nodeArgs: string[]): Promise<Agent> {
  const out = createWriteStream(join(home, 'agent.log'));
  const t0 = performance.now();
  const child = spawn(process.execPath, [...nodeArgs, cli, 'agent', '--config', config], { cwd: home, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  child.stderr?.pipe(out, { end: false });
  const api = await new Promise<string>((resolveApi, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('agent did not log "agent started" within 120 s')), 120_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`agent exited with ${String(code)} before it started; see ${join(home, 'agent.log')}`));
    });
    child.stdout?.on('data', (d: Buffer) => {
      out.write(d);
      buf += d.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.includes('agent started')) continue;
        try {
          const rec = JSON.parse(line) as { msg?: string; api?: string };
          if (rec.msg === 'agent started' && typeof rec.api === 'string' && rec.api.startsWith('http')) {
            clearTimeout(timer);
            resolveApi(rec.api.replace(/\/$/, ''));
          }
        } catch {
          // not a JSON line
        }
      }
    });
  });
  const token = readFileSync(join(home, 'reader.token'), 'utf8').trim();
  return { child, api, token, startSeconds: (performance.now() - t0) / 1000, exited };
}

async function getJob(agent: Agent): Promise<Job | undefined> {
  const r = await fetch(`${agent.api}/v1/jobs?kind=backup`, { headers: { authorization: `Bearer ${agent.token}` } });
  if (!r.ok) throw new Error(`GET /v1/jobs: ${r.status} ${await r.text()}`);
  const body = (await r.json()) as { jobs: Job[] };
  return body.jobs[0];
}

/** The agent's CPU seconds (user+sys) and peak RSS (VmHWM, KiB) from /proc, while it still runs. */
function procFigures(pid: number): { cpuSeconds: number; hwmKiB: number } {
  const hz = Number(capture('getconf', ['CLK_TCK'])) || 100;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / hz; // utime, stime (fields 14, 15)
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { cpuSeconds, hwmKiB: Number(hwm?.[1] ?? NaN) };
}

async function stopAgent(agent: Agent): Promise<number | null> {
  agent.child.kill('SIGTERM');
  const code = await Promise.race([agent.exited, sleep(60_000).then(() => 'timeout' as const)]);
  if (code === 'timeout') {
    log('agent did not exit within 60 s of SIGTERM; killing it');
    agent.child.kill('SIGKILL');
    return agent.exited;
  }
  return code;
}

// ---- one round ----

type Kind = 'A' | 'B';

interface Polling {
  sent: number;
  completed: number;
  non2xx: number;
  errors: number;
  seconds: number;
  rate: number;
  raw: Latency;
  byRoute: Record<string, Latency>;
  /** autocannon's own figures (its latency histogram is corrected for coordinated omission) */
  ac: AcHistogram;
  /** event-loop delay p99 / max of the bench process itself (a busy client inflates latencies) */
  clientLoopP99: number;
  clientLoopMax: number;
  /** responses answered in each whole second of polling (the partial last second left out) */
  perSecond: number[];
  samples: number[];
}

interface Round {
  label: string;
  kind: Kind;
  profiled: boolean;
  loadBefore: number;
  /** seconds of the corpus read just before the round (longer = more of it had left the page cache) */
  warmSeconds: number;
  agentStartSeconds: number;
  job: Job;
  bytesRead: number;
  durationMs: number;
  mbps: number;
  /** spawn of the agent to the bench seeing the job finished */
  agentWallSeconds: number;
  agentCpuSeconds: number;
  agentHwmKiB: number;
  benchCpuSeconds: number;
  exitCode: number | null;
  polling?: Polling;
  /** B rounds: the same polling for a few seconds after the backup finished (the API alone) */
  idle?: Polling;
  profile?: string;
}

interface Ctx {
  cli: string;
  src: string;
  listing: TreeListing;
  work: string;
  rate: number;
  connections: number;
  keep: boolean;
  waitIdle: number;
  idleSeconds: number;
  schedule: string;
}

function startPolling(agent: Agent, ctx: Ctx): { stop: () => Promise<Polling> } {
  const samples: number[] = [];
  const answeredAt: number[] = [];
  const t0 = performance.now();
  // autocannon's own "sent" count pads each rate-limited connection with a second's quota at start
  let sent = 0;
  const byRoute = new Map<string, number[]>(ROUTES.map((r) => [r, []]));
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  let done: (r: AcResult) => void = () => undefined;
  let failed: (e: Error) => void = () => undefined;
  const finished = new Promise<AcResult>((res, rej) => {
    done = res;
    failed = rej;
  });
  const instance = autocannon({
    url: agent.api,
    connections: ctx.connections,
    overallRate: ctx.rate,
    duration: 24 * 3600, // stopped by hand
    headers: { authorization: `Bearer ${agent.token}` },
    requests: ROUTES.map((path) => ({ method: 'GET', path })),
    timeout: 10,
    setupClient: (client: AcClient) => client.on('request', () => void sent++),
  }, (err, result) => (err ? failed(err) : done(result)));
  instance.on('response', (client, _status, _bytes, ms) => {
    samples.push(ms);
    answeredAt.push(performance.now() - t0);
    const path = client.requestIterator?.currentRequest?.path;
    if (path) byRoute.get(path)?.push(ms);
  });
  return {
    stop: async (): Promise<Polling> => {
      instance.stop();
      const r = await finished;
      loop.disable();
      const completed = samples.length;
      const perSecond = Array<number>(Math.floor(r.duration)).fill(0);
      for (const t of answeredAt) {
        const i = Math.floor(t / 1000);
        if (i < perSecond.length) perSecond[i] = (perSecond[i] ?? 0) + 1;
      }
      return {
        sent,
        completed,
        non2xx: r.non2xx,
        errors: r.errors,
        seconds: r.duration,
        rate: completed / r.duration,
        raw: latencyOf(samples),
        byRoute: Object.fromEntries([...byRoute].map(([k, v]) => [k, latencyOf(v)])),
        ac: r.latency,
        clientLoopP99: loop.percentile(99) / 1e6,
        clientLoopMax: loop.max / 1e6,
        perSecond,
        samples,
      };
    },
  };
}

async function waitIdle(maxSeconds: number): Promise<void> {
  const t0 = performance.now();
  while ((loadavg()[0] ?? 0) >= 0.5) {
    if ((performance.now() - t0) / 1000 >= maxSeconds) {
      log(`machine still busy (load ${(loadavg()[0] ?? 0).toFixed(2)}) after ${maxSeconds} s; going on`);
      return;
    }
    await sleep(5000);
  }
}

async function runRound(label: string, kind: Kind, ctx: Ctx, profiled: boolean): Promise<Round> {
  const home = join(ctx.work, `round-${label}`);
  rmSync(home, { recursive: true, force: true });
  mkdirSync(home, { recursive: true });
  const config = writeConfig(home, ctx.src, ctx.schedule);
  if (ctx.waitIdle > 0) await waitIdle(ctx.waitIdle);
  const loadBefore = loadavg()[0] ?? NaN;
  // Re-read the corpus right before every round: a page cache warmed once does not stay warm here (this
  // VM's kernel runs DAMON proactive reclaim, which pages out page cache left untouched for ~60 s).
  const warmSeconds = warm(ctx.src, ctx.listing);
  const profDir = join(home, 'prof');
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const agent = await startAgent(ctx.cli, home, config, profiled ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []);
  let polling: ReturnType<typeof startPolling> | undefined;
  let result: Polling | undefined;
  try {
    let job = await getJob(agent);
    while (!job || job.state === 'queued') {
      await sleep(100);
      job = await getJob(agent);
    }
    if (kind === 'B') polling = startPolling(agent, ctx);
    log(`${label}: job ${job.id} ${job.state} ${((performance.now() - t0) / 1000).toFixed(1)} s after spawn${polling ? `; polling at ${ctx.rate} req/s` : ''}`);
    while (!TERMINAL.has(job.state)) {
      await sleep(250);
      job = (await getJob(agent)) ?? job;
    }
    const agentWallSeconds = (performance.now() - t0) / 1000;
    result = await polling?.stop();
    polling = undefined;
    const fig = procFigures(agent.child.pid ?? 0);
    const benchCpu = process.cpuUsage(cpu0);
    let idle: Polling | undefined;
    if (kind === 'B' && !profiled && ctx.idleSeconds > 0 && job.state === 'succeeded') {
      polling = startPolling(agent, ctx);
      await sleep(ctx.idleSeconds * 1000);
      idle = await polling.stop();
      polling = undefined;
    }
    const exitCode = await stopAgent(agent);
    if (job.state !== 'succeeded') throw new Error(`${label}: backup job ${job.state}: ${job.error?.message ?? ''}; see ${join(home, 'agent.log')}`);
    const bytesRead = job.result?.bytesRead ?? NaN;
    const durationMs = job.result?.durationMs ?? NaN;
    const round: Round = {
      label,
      kind,
      profiled,
      loadBefore,
      warmSeconds,
      agentStartSeconds: agent.startSeconds,
      job,
      bytesRead,
      durationMs,
      mbps: bytesRead / 1e6 / (durationMs / 1000),
      agentWallSeconds,
      agentCpuSeconds: fig.cpuSeconds,
      agentHwmKiB: fig.hwmKiB,
      benchCpuSeconds: (benchCpu.user + benchCpu.system) / 1e6,
      exitCode,
      ...(result ? { polling: result } : {}),
      ...(idle ? { idle } : {}),
    };
    if (profiled) round.profile = summarizeProfile(profDir);
    return round;
  } finally {
    if (polling) await polling.stop().catch(() => undefined);
    if (agent.child.exitCode === null && agent.child.signalCode === null) await stopAgent(agent);
    if (!ctx.keep) {
      // keep the logs and profiles, drop the repository (the bulk)
      rmSync(join(home, 'repo'), { recursive: true, force: true });
      rmSync(join(home, 'state'), { recursive: true, force: true });
    }
  }
}

// ---- the CPU profile of the agent's main thread ----

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** What a sample's stack was doing: serving the API, the backup's pipeline, the job layer, or a VM state. */
const AREAS: [string, RegExp][] = [
  ['api', /\/dist\/api\/|\/node_modules\/(fastify|@fastify|find-my-way|avvio|fast-json-stringify|light-my-request|ajv)\//],
  ['backup', /\/dist\/(engine|repo|core|backend|source)\//],
  ['jobs/agent', /\/dist\/(jobs|agent)\//],
];

/** `METHOD /path` of the route registered at a line of dist/api/app.js (route handlers are anonymous). */
function routeAt(url: string, line: number, cache: Map<string, string[]>): string | undefined {
  let lines = cache.get(url);
  if (!lines) {
    try {
      lines = readFileSync(fileURLToPath(url), 'utf8').split('\n');
    } catch {
      lines = [];
    }
    cache.set(url, lines);
  }
  const m = /app\.(get|post|put|delete)\('([^']+)'/.exec(lines[line] ?? '');
  return m ? `${(m[1] ?? '').toUpperCase()} ${m[2] ?? ''}` : undefined;
}

export function summarizeProfile(dir: string): string {
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')) : [];
  if (files.length === 0) return `no .cpuprofile in ${dir} (did the agent exit cleanly?)`;
  // the agent's own process writes the biggest profile (worker threads, if any, write their own)
  const file = files.map((f) => join(dir, f)).sort((a, b) => statSync(b).size - statSync(a).size)[0] ?? '';
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const sources = new Map<string, string[]>();
  const shortName = (n: ProfileNode): string => {
    const f = n.callFrame;
    if (!f.url) return f.functionName;
    const where = f.url.replace(/^file:\/\//, '').replace(`${ROOT}/`, '').replace(/^native-bench\/work\/polling-build\//, '').replace(/^.*node_modules\//, '');
    return `${f.functionName || '(anonymous)'} ${where}:${f.lineNumber + 1}`;
  };
  interface Info { area: string; route: string; cairn: string }
  const infoCache = new Map<number, Info>();
  const infoOf = (id: number): Info => {
    const hit = infoCache.get(id);
    if (hit) return hit;
    const stack: ProfileNode[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur);
      if (n) stack.push(n);
    }
    const fn = byId.get(id)?.callFrame.functionName ?? '';
    const area = AREAS.find(([, re]) => stack.some((n) => re.test(n.callFrame.url)))?.[0] ?? (/^\(.*\)$/.test(fn) ? fn : 'other');
    let route = '';
    for (const n of stack) {
      if (!/\/dist\/api\/app\.js$/.test(n.callFrame.url)) continue;
      route = routeAt(n.callFrame.url, n.callFrame.lineNumber, sources) ?? '';
      if (route) break;
    }
    // the three cairn frames nearest the leaf: who called into a library
    const cairn = stack.filter((n) => /\/dist\//.test(n.callFrame.url) && !/node_modules/.test(n.callFrame.url)).slice(0, 3).map(shortName).join(' ← ');
    const info = { area, route: area === 'api' ? route || '(fastify, not in a route handler)' : '', cairn };
    infoCache.set(id, info);
    return info;
  };
  const self = new Map<string, number>();
  const areas = new Map<string, number>();
  const routes = new Map<string, number>();
  const libsql = new Map<string, number>();
  let total = 0;
  let idle = 0;
  const add = (m: Map<string, number>, k: string, v: number): void => void m.set(k, (m.get(k) ?? 0) + v);
  for (let i = 0; i < p.samples.length; i++) {
    const dt = (p.timeDeltas[i + 1] ?? p.timeDeltas[i] ?? 0) / 1000; // ms until the next sample
    const id = p.samples[i] ?? -1;
    const n = byId.get(id);
    if (!n) continue;
    const info = infoOf(id);
    add(self, `${shortName(n)}\t${info.area}`, dt);
    add(areas, info.area, dt);
    if (info.route) add(routes, info.route, dt);
    if (/\/libsql\//.test(n.callFrame.url)) add(libsql, info.cairn || '(no cairn frame)', dt);
    total += dt;
    if (n.callFrame.functionName === '(idle)') idle += dt;
  }
  const pct = (ms: number): string => ((100 * ms) / total).toFixed(1);
  const list = (m: Map<string, number>, k: number): string => [...m].sort((a, b) => b[1] - a[1]).slice(0, k).map(([x, ms]) => `${x} ${pct(ms)}%`).join(', ');
  const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, 20);
  return [
    `profile \`${file}\`: ${(total / 1000).toFixed(1)} s sampled over the agent's whole life (start-up included), main thread busy ${pct(total - idle)}%`,
    '',
    `- By stack (a sample counts for "api" if any frame on its stack is cairn's api/ or fastify's code, else "backup" for engine/repo/core/backend/source, `
      + `else "jobs/agent"; samples with no such frame go by their VM state or "other" (native callbacks such as libuv completions)): ${list(areas, 10)}`,
    `- "api" by route handler on the stack: ${list(routes, 10)}`,
    `- libsql (SQLite) self time by the cairn frames that called it (innermost first): ${list(libsql, 5)}`,
    '',
    '| self ms | % | function | stack area |',
    '| ---: | ---: | --- | --- |',
    ...top.map(([k, ms]) => {
      const [fn, area] = k.split('\t');
      return `| ${ms.toFixed(0)} | ${pct(ms)} | \`${fn ?? ''}\` | ${area ?? ''} |`;
    }),
  ].join('\n');
}

// ---- report ----

const f0 = (x: number): string => (Number.isFinite(x) ? x.toFixed(0) : '–');
const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '–');
const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '–');
const row = (cells: string[]): string => `| ${cells.join(' | ')} |`;

function label(p: CorpusParams): string {
  const same = (q: CorpusParams): boolean => q.files === p.files && q.bytes === p.bytes && q.seed === p.seed;
  const kind = same(SMALL) ? 'small corpus' : same(DEFAULT) ? 'full corpus' : 'custom corpus';
  return `${kind} (${p.files} files, ${(p.bytes / 1e6).toFixed(0)} MB target, seed ${p.seed})`;
}

interface Report {
  date: string;
  params: CorpusParams;
  manifest: Manifest;
  warmSeconds: number;
  build: string;
  ctx: Ctx;
  rounds: Round[];
  profiled?: Round;
}

function render(r: Report): { md: string; pass: boolean } {
  const m = r.manifest;
  const A = r.rounds.filter((x) => x.kind === 'A');
  const B = r.rounds.filter((x) => x.kind === 'B');
  const medA = median(A.map((x) => x.mbps));
  const medB = median(B.map((x) => x.mbps));
  const loss = 1 - medB / medA;
  const pooled = latencyOf(B.flatMap((x) => x.polling?.samples ?? []));
  const worstP99 = Math.max(...B.map((x) => x.polling?.raw.p99 ?? NaN));
  const rates = B.map((x) => x.polling?.rate ?? 0);
  const bad = B.reduce((a, x) => a + (x.polling ? x.polling.non2xx + x.polling.errors : 0), 0);
  const short = B.filter((x) => (x.polling?.rate ?? 0) < 0.95 * r.ctx.rate).map((x) => x.label);
  const why = [
    ...(pooled.p99 < TARGET_P99_MS ? [] : [`p99 ≥ ${TARGET_P99_MS} ms`]),
    ...(short.length ? [`${short.join(', ')} below 95% of the rate`] : []),
    ...(bad ? [`${bad} non-2xx/errors`] : []),
  ];
  const latencyPass = why.length === 0;
  const lossPass = loss < TARGET_LOSS;
  const out: string[] = [];
  out.push('## Agent API under polling (issue 3)', '');
  out.push(`- Date: ${r.date}; \`npx tsx native-bench/polling.ts${r.params.files === SMALL.files && r.params.bytes === SMALL.bytes ? ' --small' : ''}\` (rounds ${A.length}+${B.length}, A/B alternating)`);
  out.push(`- Machine: ${machine()}`);
  out.push(`- cairn: ${r.build}`);
  out.push(`- Corpus: ${label(r.params)}: ${m.files} files in ${m.dirs} dirs, ${(m.bytes / 1e6).toFixed(0)} MB (${m.bytes} bytes); `
    + `the whole corpus is read once at the start (${r.warmSeconds.toFixed(1)} s) and again right before each round ("warm s"), so every round starts from a warm page cache `
    + `(dropping the cache instead would need root; one warm-up is not enough here: the kernel's DAMON reclaim pages out page cache untouched for ~60 s)`);
  out.push(`- Each round: a fresh agent home (repository, state, key, tokens); one folder source, schedule \`${r.ctx.schedule}\` (never fires during the run); the agent's first backup of the corpus (trigger "start"). `
    + `A: no polling. B: autocannon 8 in the bench process, overallRate ${r.ctx.rate} req/s over ${r.ctx.connections} connections, `
    + `rotating GET ${ROUTES.join(', ')} with a reader bearer token, from when the job is \`running\` until the bench sees it finished`
    + (r.ctx.idleSeconds > 0 ? `; then the same polling for ${r.ctx.idleSeconds} s more on the idle agent (the API alone, its source now backed up; not in the verdicts)` : ''));
  out.push(`- MB/s = job result bytesRead / durationMs (MB = 1e6 B); job s = the job result's durationMs; agent s = spawn to the bench seeing the job finished; `
    + `agent cpu = user+sys of the agent process; RSS = VmHWM at the end; bench cpu = the bench process (autocannon + job polling) during the round`);
  out.push(`- Latency: each response's time as autocannon's client measured it (ms, exact percentiles over all responses); `
    + `"ac p99" is autocannon's own histogram, which adds coordinated-omission fill-ins at a 1 ms interval (ceil(1/rate per connection)) and so reads higher. `
    + `autocannon's limiter sends each connection's per-second quota back to back at the start of each second, so the load is ${r.ctx.connections} requests in flight in bursts, not evenly spaced`);
  out.push('');
  out.push(row(['round', 'load before', 'warm s', 'MB read', 'job s', 'MB/s', 'agent s', 'agent cpu s', 'agent RSS MiB', 'bench cpu s', 'sent / answered', 'non-2xx+err', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'ac p99 ms', 'client loop p99 ms']));
  out.push(row(['---', ...Array<string>(18).fill('---:')]));
  for (const x of [...r.rounds, ...(r.profiled ? [r.profiled] : [])]) {
    const p = x.polling;
    out.push(row([
      `${x.label}${x.profiled ? ' (cpu-prof)' : ''}`, f2(x.loadBefore), f1(x.warmSeconds), f0(x.bytesRead / 1e6), f2(x.durationMs / 1000), f1(x.mbps), f1(x.agentWallSeconds),
      f1(x.agentCpuSeconds), f0(x.agentHwmKiB / 1024), f1(x.benchCpuSeconds),
      p ? `${p.sent} / ${p.completed}` : '–', p ? String(p.non2xx + p.errors) : '–', p ? f0(p.rate) : '–',
      p ? f2(p.raw.p50) : '–', p ? f2(p.raw.p90) : '–', p ? f2(p.raw.p99) : '–', p ? f1(p.raw.max) : '–', p ? f0(p.ac.p99) : '–', p ? f1(p.clientLoopP99) : '–',
    ]));
  }
  out.push('');
  for (const x of B) {
    const p = x.polling;
    if (!p) continue;
    const ps = p.perSecond;
    out.push(`- ${x.label}: per route p50/p99/max ms ${ROUTES.map((rt) => {
      const l = p.byRoute[rt];
      return l ? `${rt} ${f2(l.p50)}/${f2(l.p99)}/${f1(l.max)} (n ${l.n})` : `${rt} –`;
    }).join('; ')}; polled ${f1(p.seconds)} s; answered per whole second min ${Math.min(...ps)}, median ${median(ps)}, `
      + `${ps.filter((n) => n < 0.95 * r.ctx.rate).length} of ${ps.length} s below 95% of the rate; client loop max ${f1(p.clientLoopMax)} ms`);
    const q = x.idle;
    if (q) {
      out.push(`  - then ${f0(q.seconds)} s of the same polling with the backup finished (the API alone): ${q.completed} answered at ${f0(q.rate)} req/s, `
        + `p50/p90/p99/max ${f2(q.raw.p50)}/${f2(q.raw.p90)}/${f2(q.raw.p99)}/${f1(q.raw.max)} ms, ac p99 ${f0(q.ac.p99)} ms, non-2xx+err ${q.non2xx + q.errors}`);
    }
  }
  out.push(`- Pairwise throughput loss (B_i vs A_i): ${B.map((b, i) => { const a = A[i]; return a ? `${f1(100 * (1 - b.mbps / a.mbps))}%` : '–'; }).join(', ')}`);
  out.push('');
  out.push(row(['target', 'goal', 'measured', 'verdict']));
  out.push(row(['---', '---', '---', '---']));
  out.push(row(['polling latency', `p99 < ${TARGET_P99_MS} ms at ${r.ctx.rate} req/s, all 2xx`,
    `p99 ${f2(pooled.p99)} ms over ${pooled.n} responses of ${B.length} B rounds (worst round ${f2(worstP99)} ms; p50 ${f2(pooled.p50)}, max ${f1(pooled.max)}); `
    + `achieved ${rates.map(f0).join('/')} req/s; non-2xx+errors ${bad}`, latencyPass ? 'PASS' : `FAIL (${why.join('; ')})`]));
  out.push(row(['backup throughput', `loss < ${TARGET_LOSS * 100}% (median B vs median A)`,
    `A median ${f1(medA)} MB/s, B median ${f1(medB)} MB/s: loss ${f1(100 * loss)}%`, lossPass ? 'PASS' : 'FAIL']));
  if (r.profiled?.profile) out.push('', `Agent main-thread CPU profile of the extra B round (${r.profiled.label}, node --cpu-prof; the agent's whole life: start-up, the backup under polling, shutdown):`, '', r.profiled.profile);
  out.push('');
  return { md: out.join('\n'), pass: latencyPass && lossPass };
}

// ---- main ----

/** Copy dist/ (and package.json, which cli/version.js reads) so every round runs the same build. */
function snapshotBuild(): { cli: string; build: string } {
  const dist = join(ROOT, 'dist');
  const main = join(dist, 'cli', 'main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing (run npm run build first)`);
  rmSync(BUILD_COPY, { recursive: true, force: true });
  mkdirSync(BUILD_COPY, { recursive: true });
  cpSync(dist, join(BUILD_COPY, 'dist'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(BUILD_COPY, 'package.json'));
  const cli = join(BUILD_COPY, 'dist', 'cli', 'main.js');
  const version = capture(process.execPath, [cli, '--version']);
  if (!version) throw new Error(`the copied build at ${BUILD_COPY} does not run (was dist/ being rebuilt? try again)`);
  const head = capture('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']) || 'unknown';
  return { cli, build: `${version}, dist/ built ${statSync(main).mtime.toISOString()} from the working tree (HEAD ${head} when the run started), copied to native-bench/work/ for the run` };
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      ...CORPUS_OPTIONS,
      corpus: { type: 'string' },
      work: { type: 'string' },
      rounds: { type: 'string' },
      rate: { type: 'string' },
      connections: { type: 'string' },
      'cpu-prof': { type: 'boolean' },
      'idle-seconds': { type: 'string' },
      'wait-idle': { type: 'string' },
      keep: { type: 'boolean' },
      'no-append': { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (values.work) process.env['CAIRN_BENCH_DIR'] = resolve(values.work);
  const rounds = parseCount(values.rounds ?? '3', 'rounds');
  if (rounds < 2) throw new Error('--rounds wants at least 2 (A B A B)');
  const rate = parseCount(values.rate ?? '1000', 'rate');
  const connections = parseCount(values.connections ?? '10', 'connections');
  const idleSeconds = parseCount(values['idle-seconds'] ?? '10', 'idle-seconds');
  if (rate < 1 || connections < 1) throw new Error('--rate and --connections want positive integers');
  const waitIdleSeconds = Number(values['wait-idle'] ?? 0);
  if (!Number.isFinite(waitIdleSeconds) || waitIdleSeconds < 0) throw new Error('--wait-idle wants a number of seconds');
  const base = workDir();
  assertOutsideRepo(base);
  const work = join(base, 'polling');
  mkdirSync(work, { recursive: true });
  const params = corpusParams(values);
  const corpus = ensureCorpus(params, values.corpus ?? values.out ?? defaultCorpusDir(params), log);
  const src = realpathSync(corpus.tree);
  const listing = walk(src);
  if (listing.bytes !== corpus.manifest.bytes || listing.files.size !== corpus.manifest.files) {
    throw new Error(`corpus on disk (${listing.files.size} files, ${listing.bytes} B) does not match corpus.json; delete ${corpus.dir}`);
  }
  const { cli, build } = snapshotBuild();
  log(`cairn ${build}`);
  const warmSeconds = warm(src, listing);
  log(`corpus ${src}: ${listing.files.size} files, ${(listing.bytes / 1e6).toFixed(0)} MB, warm-up read ${warmSeconds.toFixed(1)} s`);
  const ctx: Ctx = { cli, src, listing, work, rate, connections, keep: values.keep ?? false, waitIdle: waitIdleSeconds, idleSeconds, schedule: farSchedule() };
  const done: Round[] = [];
  const show = (x: Round): string => `${x.label}: ${f1(x.mbps)} MB/s (job ${f2(x.durationMs / 1000)} s, agent cpu ${f1(x.agentCpuSeconds)} s, RSS ${f0(x.agentHwmKiB / 1024)} MiB, load before ${f2(x.loadBefore)}, warm ${f1(x.warmSeconds)} s)`
    + (x.polling ? `; ${x.polling.completed} responses at ${f0(x.polling.rate)} req/s, p50 ${f2(x.polling.raw.p50)} p99 ${f2(x.polling.raw.p99)} max ${f1(x.polling.raw.max)} ms, ac p99 ${f0(x.polling.ac.p99)} ms, non-2xx+err ${x.polling.non2xx + x.polling.errors}` : '');
  for (let i = 1; i <= rounds; i++) {
    for (const kind of ['A', 'B'] as const) {
      log(`round ${kind}${i} ...`);
      const x = await runRound(`${kind}${i}`, kind, ctx, false);
      done.push(x);
      log(show(x));
    }
  }
  let profiled: Round | undefined;
  if (values['cpu-prof']) {
    log('extra B round with --cpu-prof ...');
    profiled = await runRound('Bprof', 'B', ctx, true);
    log(show(profiled));
  }
  const { md, pass } = render({ date: new Date().toISOString(), params, manifest: corpus.manifest, warmSeconds, build, ctx, rounds: done, ...(profiled ? { profiled } : {}) });
  console.log(md);
  if (!values['no-append']) {
    appendFileSync(RESULTS, `\n${md}`);
    log(`appended to ${RESULTS}`);
  }
  if (!pass) process.exitCode = 1;
}

if (isMain(import.meta.url)) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(`[polling] ${(e as Error).message}`);
    process.exit(2);
  });
}

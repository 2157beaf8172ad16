import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Job } from '../jobs/job.js';

/** What the metrics read when scraped. */
export interface MetricsSource {
  /** Last good backup end time per source (ms). */
  lastSuccessMs(): readonly { source: string; ms: number }[];
  running(): number;
  queued(): number;
}

/** The agent's Prometheus metrics, in a registry of their own. */
export interface Metrics {
  readonly registry: Registry;
  /** Records a job that reached a final state. */
  observe(job: Job): void;
}

/** Default metrics whose names break Prometheus naming rules. */
const LINT_FAILING_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** Job durations span seconds (a no-change rerun) to many hours (a first backup of a server). */
const DURATION_BUCKETS = [1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600];

/** Creates the metrics: process defaults plus jobs by kind and outcome, durations, bytes read
 *  and added, dedup savings, and last success time per source. */
export function createMetrics(src: MetricsSource): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'cairn_' });
  // prom-client names these gauges *_total, which `promtool check metrics` flags (a _total
  // suffix means a counter); the handle counts are of little use to a backup console anyway
  for (const name of LINT_FAILING_DEFAULTS) registry.removeSingleMetric(`cairn_${name}`);
  const jobs = new Counter({ name: 'cairn_jobs_total', help: 'Jobs finished since the agent started, by kind and final state.', labelNames: ['kind', 'state'], registers: [registry] });
  const duration = new Histogram({ name: 'cairn_job_duration_seconds', help: 'Run time of finished jobs.', labelNames: ['kind'], buckets: DURATION_BUCKETS, registers: [registry] });
  const read = new Counter({ name: 'cairn_backup_read_bytes_total', help: 'File content bytes read by backups.', labelNames: ['source'], registers: [registry] });
  const added = new Counter({ name: 'cairn_backup_added_bytes_total', help: 'Bytes added to the repository by backups (after dedup and compression).', labelNames: ['source'], registers: [registry] });
  const covered = new Gauge({ name: 'cairn_backup_last_total_bytes', help: 'Bytes of file content the last good backup of a source covers.', labelNames: ['source'], registers: [registry] });
  const dedup = new Gauge({ name: 'cairn_backup_last_dedup_ratio', help: 'Bytes covered over bytes added by the last good backup of a source (higher is better).', labelNames: ['source'], registers: [registry] });
  new Gauge({
    name: 'cairn_source_last_success_timestamp_seconds',
    help: 'When the last good backup of a source finished (Unix time).',
    labelNames: ['source'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of src.lastSuccessMs()) this.set({ source: s.source }, s.ms / 1000);
    },
  });
  new Gauge({ name: 'cairn_jobs_running', help: 'Jobs running now (0 or 1).', registers: [registry], collect() { this.set(src.running()); } });
  new Gauge({ name: 'cairn_jobs_queued', help: 'Jobs waiting to run.', registers: [registry], collect() { this.set(src.queued()); } });
  for (const kind of ['backup', 'restore', 'check']) for (const state of ['succeeded', 'failed', 'cancelled']) jobs.inc({ kind, state }, 0);
  return {
    registry,
    observe(job) {
      jobs.inc({ kind: job.kind, state: job.state });
      if (job.startedAt && job.finishedAt) duration.observe({ kind: job.kind }, (Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000);
      const r = job.result as { bytesRead?: number; bytesAdded?: number; bytesTotal?: number } | undefined;
      if (job.kind !== 'backup' || !job.source || !r || r.bytesRead === undefined) return;
      read.inc({ source: job.source }, r.bytesRead);
      added.inc({ source: job.source }, r.bytesAdded ?? 0);
      if (job.state === 'succeeded' && r.bytesTotal !== undefined) {
        covered.set({ source: job.source }, r.bytesTotal);
        dedup.set({ source: job.source }, r.bytesTotal / Math.max(1, r.bytesAdded ?? 0));
      }
    },
  };
}

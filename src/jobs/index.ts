/**
 * jobs: what the agent does, as records that outlive it. A job (backup, restore, check) is
 * queued, run one at a time, and ends succeeded, failed, cancelled or (found after a crash)
 * interrupted; its progress, result and error are kept in the job store (SQLite in the agent,
 * memory in unit tests). Around the queue: the runners that drive the engine, with pre/post
 * hooks; the scheduler (cron, on an injected clock, with overdue runs at start); the change
 * journal that narrows the next scan; and the judgement of each source's protection and the
 * agent's health. No HTTP here: the API reads and drives this layer.
 */
export * from './clock.js';
export * from './job.js';
export * from './job-store.js';
export * from './sqlite-job-store.js';
export * from './job-manager.js';
export * from './progress.js';
export * from './runners.js';
export * from './hooks.js';
export * from './schedule.js';
export * from './scheduler.js';
export * from './status.js';
export * from './change-journal.js';

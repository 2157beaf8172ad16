import { type Static, Type } from '@sinclair/typebox';
import { JOB_KINDS, JOB_STATES } from '../jobs/job.js';

const literals = <T extends string>(values: readonly T[]) => Type.Union(values.map((v) => Type.Literal(v)));

/** Free-form JSON (a job's parameters or result): kept whole by the serializer. */
const Json = Type.Unsafe<Record<string, unknown>>({ type: 'object', additionalProperties: true });

/** A stable error: every 4xx and 5xx answer has this shape. */
export const ErrorBody = Type.Object(
  {
    statusCode: Type.Integer(),
    code: Type.String({ description: 'stable: branch on this, never on message' }),
    error: Type.String(),
    message: Type.String(),
    hint: Type.Optional(Type.String()),
  },
  { $id: 'Error' },
);

/** What a job does. */
export const JobKindSchema = literals(JOB_KINDS);
/** Where a job is in its life. */
export const JobStateSchema = literals(JOB_STATES);

/** A running job's progress. */
export const ProgressSchema = Type.Object({
  phase: Type.String(),
  files: Type.Integer(),
  bytes: Type.Integer(),
  filesTotal: Type.Optional(Type.Integer()),
  bytesTotal: Type.Optional(Type.Integer()),
  rateBytesPerSec: Type.Integer(),
  etaSeconds: Type.Optional(Type.Integer()),
  errors: Type.Integer(),
});

/** A job: what, when, how far, and how it ended. */
export const JobSchema = Type.Object(
  {
    id: Type.String(),
    kind: JobKindSchema,
    state: JobStateSchema,
    source: Type.Optional(Type.String()),
    trigger: literals(['start', 'schedule', 'overdue', 'change', 'api'] as const),
    params: Json,
    createdAt: Type.String({ format: 'date-time' }),
    startedAt: Type.Optional(Type.String({ format: 'date-time' })),
    finishedAt: Type.Optional(Type.String({ format: 'date-time' })),
    progress: Type.Optional(ProgressSchema),
    result: Type.Optional(Json),
    error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String(), hint: Type.Optional(Type.String()), output: Type.Optional(Type.String()) })),
  },
  { $id: 'Job' },
);

/** GET /v1/jobs: filters and the page wanted. */
export const JobListQuery = Type.Object(
  {
    status: Type.Optional(Type.String({ pattern: `^(${JOB_STATES.join('|')})(,(${JOB_STATES.join('|')}))*$`, maxLength: 100, description: 'one state or several, comma-separated' })),
    kind: Type.Optional(JobKindSchema),
    source: Type.Optional(Type.String({ minLength: 1 })),
    since: Type.Optional(Type.String({ format: 'date-time', description: 'jobs created at or after this time (RFC 3339)' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
    cursor: Type.Optional(Type.String({ minLength: 1, description: 'the `next` of the previous page' })),
  },
  { additionalProperties: false },
);
/** The query of GET /v1/jobs, typed. */
export type JobListQuery = Static<typeof JobListQuery>;

/** One page of jobs, newest first, and the cursor of the next. */
export const JobPageSchema = Type.Object({ jobs: Type.Array(Type.Ref(JobSchema)), next: Type.Optional(Type.String()) });

/** A job id in a route. */
export const JobIdParams = Type.Object({ id: Type.String({ pattern: '^\\d{1,15}$', description: 'a job id' }) });

/** POST /v1/jobs: what to run, chosen by `kind` (a discriminated oneOf, so a mistake is
 *  reported against the fields of that kind, not as "matches no schema"). */
const newJobBranches = [
    Type.Object({ kind: Type.Literal('backup'), source: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
    Type.Object(
      {
        kind: Type.Literal('restore'),
        source: Type.Optional(Type.String({ minLength: 1, description: 'for snapshot "latest": the newest of this source' })),
        snapshot: Type.Optional(Type.String({ pattern: '^(latest|[0-9a-f]{4,64})$', default: 'latest' })),
        target: Type.String({ minLength: 1, description: 'absolute path to restore into' }),
        include: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
        overwrite: Type.Optional(Type.Boolean()),
      },
      { additionalProperties: false },
    ),
    Type.Object(
      {
        kind: Type.Literal('check'),
        readData: Type.Optional(Type.Boolean()),
        subset: Type.Optional(Type.String({ pattern: '^[1-9][0-9]*/[1-9][0-9]*$', description: 'read the n-th of t subsets of packs, e.g. 1/10' })),
      },
      { additionalProperties: false },
    ),
] as const;
/** The body of POST /v1/jobs, typed. */
export type NewJobBody = Static<(typeof newJobBranches)[number]>;
/** The body of POST /v1/jobs: one branch per kind. */
export const NewJobBody = Type.Unsafe<NewJobBody>({ type: 'object', required: ['kind'], discriminator: { propertyName: 'kind' }, oneOf: newJobBranches });

/** A source's protection state and why. */
export const ProtectionSchema = Type.Object({
  state: literals(['protected', 'late', 'failing', 'never-backed-up', 'source-missing'] as const),
  reason: Type.Optional(Type.String()),
});

/** A source as the console shows it. */
export const SourceSchema = Type.Object({
  name: Type.String(),
  kind: Type.Literal('folder'),
  paths: Type.Array(Type.String()),
  excludes: Type.Array(Type.String()),
  tags: Type.Array(Type.String()),
  schedule: Type.Array(Type.String()),
  watch: Type.Boolean(),
  nextRunAt: Type.Optional(Type.String({ format: 'date-time' })),
  protection: ProtectionSchema,
  lastBackup: Type.Optional(Type.Object({ jobId: Type.String(), state: JobStateSchema, finishedAt: Type.Optional(Type.String()), snapshotId: Type.Optional(Type.String()), error: Type.Optional(Type.String()) })),
  lastSuccessAt: Type.Optional(Type.String({ format: 'date-time' })),
});
/** A source view, typed. */
export type SourceView = Static<typeof SourceSchema>;

/** A snapshot as the console lists it. */
export const SnapshotSchema = Type.Object({
  id: Type.String(),
  time: Type.String({ format: 'date-time' }),
  host: Type.String(),
  agent: Type.Optional(Type.String()),
  source: Type.String(),
  paths: Type.Array(Type.String()),
  tags: Type.Array(Type.String()),
  parent: Type.Optional(Type.String()),
  deleted: Type.Boolean({ description: 'soft-deleted (restorable until purged)' }),
  summary: Json,
});
/** A snapshot view, typed. */
export type SnapshotView = Static<typeof SnapshotSchema>;

/** GET /v1/snapshots: filters. */
export const SnapshotQuery = Type.Object({ source: Type.Optional(Type.String({ minLength: 1 })), host: Type.Optional(Type.String({ minLength: 1 })) }, { additionalProperties: false });

/** The console tiles. */
export const SummarySchema = Type.Object({
  agent: Type.String(),
  version: Type.String(),
  jobsLast24h: Type.Object({ total: Type.Integer(), byKind: Type.Record(Type.String(), Type.Record(Type.String(), Type.Integer())) }),
  sources: Type.Object({
    total: Type.Integer(),
    protected: Type.Integer(),
    late: Type.Integer(),
    failing: Type.Integer(),
    neverBackedUp: Type.Integer(),
    sourceMissing: Type.Integer(),
    softDeleted: Type.Integer({ description: 'sources whose snapshots are all soft-deleted (retention work)' }),
  }),
  running: Type.Optional(Type.Ref(JobSchema)),
  queued: Type.Integer(),
});
/** The summary, typed. */
export type Summary = Static<typeof SummarySchema>;

/** GET /health. */
export const HealthSchema = Type.Object({
  status: literals(['ok', 'degraded', 'failing'] as const),
  reasons: Type.Array(Type.Object({ code: Type.String(), message: Type.String(), source: Type.Optional(Type.String()) })),
});

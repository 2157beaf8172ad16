import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyHttpOptions, type FastifyRequest, LogController } from 'fastify';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { CairnError } from '../core/errors.js';
import type { JobManager } from '../jobs/job-manager.js';
import type { Health } from '../jobs/status.js';
import { type Role, allows } from './auth.js';
import { errorBody } from './errors.js';
import type { Metrics } from './metrics.js';
import { ErrorBody, HealthSchema, JobIdParams, JobListQuery, JobPageSchema, JobSchema, NewJobBody, SnapshotQuery, SnapshotSchema, type SnapshotView, SourceSchema, type SourceView, type Summary, SummarySchema } from './schemas.js';
import { Type } from '@sinclair/typebox';

/** What the API reads and drives: the agent implements it. */
export interface AgentStatus {
  sources(): readonly SourceView[];
  summary(): Summary;
  health(): Health;
  snapshots(filter: { source?: string; host?: string }): Promise<readonly SnapshotView[]>;
}

/** What buildApp needs. */
export interface ApiDeps {
  readonly jobs: Pick<JobManager, 'submit' | 'cancel' | 'get' | 'list'>;
  readonly status: AgentStatus;
  readonly metrics: Metrics;
  /** The role of a presented bearer token, or undefined if it is not one. */
  readonly roleOf: (token: string) => Role | undefined;
  /** False when no token is configured: every route but /health then answers 401 saying so. */
  readonly tokensConfigured: () => boolean;
  readonly version: string;
  readonly logger?: Logger;
  /** Serve HTTPS with this key and certificate (PEM). */
  readonly tls?: { readonly key: Buffer; readonly cert: Buffer };
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The least role a route needs; routes without one are open. */
    role?: Role;
  }
}

const errors = { 400: Type.Ref(ErrorBody), 401: Type.Ref(ErrorBody), 403: Type.Ref(ErrorBody), 404: Type.Ref(ErrorBody), 409: Type.Ref(ErrorBody), 503: Type.Ref(ErrorBody) };
const bearer = [{ bearer: [] }];

/**
 * The agent's HTTP API (design §5), built apart from any server so tests drive it with inject().
 * Every route but /health and /docs needs a bearer token of a role; 401 means no or an unknown
 * token, 403 a token whose role is not enough. Errors carry a stable `code`.
 */
export async function buildApp(deps: ApiDeps) {
  const options = {
    ...(deps.logger ? { loggerInstance: deps.logger.child({ component: 'api' }) } : { logger: false }),
    ...(deps.tls ? { https: { key: deps.tls.key, cert: deps.tls.cert } } : {}),
    // a request log line each would be 1,000 lines a second under a console's polling
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 64 * 1024,
    // no silent removal of unknown fields: a misspelt one is a 400 that names it
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array' as const, allErrors: false, discriminator: true } },
  };
  // Typed as the HTTP variant: with `https` the server is an https.Server, which the routes and
  // inject() use the same way; Fastify's overloads cannot pick one for a conditional option.
  const app = createFastify(options as FastifyHttpOptions<Server>);

  // set before the plugins register, so their routes (/docs) answer errors the same way
  app.setErrorHandler((err, req, reply) => {
    const body = errorBody(err);
    if (body.statusCode >= 500) req.log.error({ err, url: req.url }, 'request failed');
    if (body.statusCode === 401) void reply.header('www-authenticate', 'Bearer realm="cairn"');
    return reply.code(body.statusCode).send(body);
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ statusCode: 404, code: 'E_NOT_FOUND', error: 'Not Found', message: `no route ${req.method} ${req.url.split('?')[0]}`, hint: 'the routes are listed at /docs' }));

  app.addSchema(ErrorBody);
  app.addSchema(JobSchema);
  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'cairn agent API', version: deps.version, description: 'Health, jobs, sources, snapshots and metrics of one cairn agent.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });
  // the API's description needs a reader token like everything but /health
  await app.register(fastifySwaggerUi, { routePrefix: '/docs', uiHooks: { onRequest: async (req) => void authenticate(req, deps) } });

  app.addHook('onRequest', async (req, reply) => {
    const need = req.routeOptions.config.role;
    if (!need) return;
    const role = authenticate(req, deps);
    if (!allows(role, need)) {
      throw new CairnError('E_FORBIDDEN', `this token's role (${role}) cannot ${req.method} ${req.routeOptions.url ?? req.url}: it needs ${need}`, { hint: 'use an operator token' });
    }
    void reply;
  });

  registerStatusRoutes(app, deps);
  registerJobRoutes(app, deps);
  return app;
}

/** The app as the route registrations see it. */
type ApiApp = Awaited<ReturnType<typeof createFastify>>;

function createFastify(options: FastifyHttpOptions<Server>) {
  return Fastify(options).withTypeProvider<TypeBoxTypeProvider>();
}

/** GET /health, /metrics, /v1/summary, /v1/sources, /v1/snapshots. */
function registerStatusRoutes(app: ApiApp, deps: ApiDeps): void {
  app.get('/health', { schema: { summary: 'ok, degraded or failing, with reasons (no token needed)', response: { 200: HealthSchema, 503: HealthSchema } } }, (_req, reply) => {
    const h = deps.status.health();
    void reply.code(h.status === 'failing' ? 503 : 200);
    return { status: h.status, reasons: [...h.reasons] };
  });

  app.get('/metrics', { config: { role: 'reader' }, schema: { summary: 'Prometheus text exposition', security: bearer, produces: ['text/plain'] } }, async (_req, reply) => {
    const text = await deps.metrics.registry.metrics();
    return reply.type(deps.metrics.registry.contentType).send(text);
  });

  app.get('/v1/summary', { config: { role: 'reader' }, schema: { summary: 'the console tiles', security: bearer, response: { 200: SummarySchema, ...errors } } }, () => deps.status.summary());

  app.get('/v1/sources', { config: { role: 'reader' }, schema: { summary: 'protected items: schedule, last result, next run', security: bearer, response: { 200: Type.Object({ sources: Type.Array(SourceSchema) }), ...errors } } }, () => ({ sources: [...deps.status.sources()] }));

  app.get('/v1/snapshots', { config: { role: 'reader' }, schema: { summary: 'snapshots in the repository, newest first', security: bearer, querystring: SnapshotQuery, response: { 200: Type.Object({ snapshots: Type.Array(SnapshotSchema) }), ...errors } } }, async (req) => {
    return { snapshots: [...(await deps.status.snapshots(req.query))] };
  });

}

/** GET /v1/jobs, GET /v1/jobs/:id, POST /v1/jobs, POST /v1/jobs/:id/cancel. */
function registerJobRoutes(app: ApiApp, deps: ApiDeps): void {
  app.get('/v1/jobs', { config: { role: 'reader' }, schema: { summary: 'jobs, newest first, filtered, one page at a time', security: bearer, querystring: JobListQuery, response: { 200: JobPageSchema, ...errors } } }, (req) => {
    const q = req.query;
    const filter = {
      ...(q.status !== undefined ? { states: q.status.split(',') as never } : {}),
      ...(q.kind !== undefined ? { kind: q.kind } : {}),
      ...(q.source !== undefined ? { source: q.source } : {}),
      ...(q.since !== undefined ? { sinceMs: Date.parse(q.since) } : {}),
    };
    const page = deps.jobs.list(filter, q.limit ?? 50, q.cursor);
    return { jobs: [...page.jobs], ...(page.next !== undefined ? { next: page.next } : {}) };
  });

  app.get('/v1/jobs/:id', { config: { role: 'reader' }, schema: { summary: 'one job: state, progress, result, error', security: bearer, params: JobIdParams, response: { 200: Type.Ref(JobSchema), ...errors } } }, (req) => {
    const job = deps.jobs.get(req.params.id);
    if (!job) throw new CairnError('E_JOB_NOT_FOUND', `no job ${req.params.id}`, { hint: 'list jobs with GET /v1/jobs; history older than agent.jobHistoryDays is deleted' });
    return job;
  });

  app.post('/v1/jobs', { config: { role: 'operator' }, schema: { summary: 'queue a backup, restore or check → 202 with the job', security: bearer, body: NewJobBody, response: { 202: Type.Ref(JobSchema), ...errors } } }, (req, reply) => {
    const { kind, ...params } = req.body;
    const { job } = deps.jobs.submit(kind, params, 'api');
    void reply.code(202).header('location', `/v1/jobs/${job.id}`);
    return job;
  });

  app.post('/v1/jobs/:id/cancel', { config: { role: 'operator' }, schema: { summary: 'cancel a queued job, or a running one at its next safe point → 202', security: bearer, params: JobIdParams, response: { 202: Type.Ref(JobSchema), ...errors } } }, (req, reply) => {
    const job = deps.jobs.cancel(req.params.id);
    void reply.code(202);
    return job;
  });

}

function authenticate(req: FastifyRequest, deps: ApiDeps): Role {
  if (!deps.tokensConfigured()) throw new CairnError('E_UNAUTHORIZED', 'no API tokens are configured, so only /health is served', { hint: 'add api.tokens to the config (a file or an environment variable per token) and reload the agent' });
  const h = req.headers.authorization;
  const m = h === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(h);
  if (!m) throw new CairnError('E_UNAUTHORIZED', h === undefined ? 'this route needs a token: send "Authorization: Bearer <token>"' : 'the Authorization header is not "Bearer <token>"');
  const role = deps.roleOf(m[1]!);
  if (!role) throw new CairnError('E_UNAUTHORIZED', 'the bearer token is not one this agent knows', { hint: 'check the token file named in api.tokens' });
  return role;
}

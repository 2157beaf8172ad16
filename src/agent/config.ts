import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type Static, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../core/errors.js';
import { cronProblem } from '../jobs/schedule.js';

const Name = Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,62}$', description: 'lowercase letters, digits, - and _' });
const NonEmpty = Type.String({ minLength: 1 });
const Count = Type.Integer({ minimum: 0, description: 'a whole number, 0 or more' });
const EnvName = Type.String({ pattern: '^[A-Z_][A-Z0-9_]*$', description: 'an environment variable name' });

/** A folder source: what to back up, when, and how it is tagged. */
const FolderSource = Type.Object(
  {
    name: Name,
    kind: Type.Literal('folder'),
    paths: Type.Array(NonEmpty, { minItems: 1 }),
    excludes: Type.Optional(Type.Array(NonEmpty)),
    oneFileSystem: Type.Optional(Type.Boolean()),
    tags: Type.Optional(Type.Array(NonEmpty)),
    /** Cron expressions (5 or 6 fields); several a day are fine. */
    schedule: Type.Array(NonEmpty, { minItems: 1 }),
    /** Commands run by /bin/sh around each backup of this source: a failing pre hook fails the
     *  job (with its output); the post hook always runs, told the outcome in CAIRN_JOB_STATUS. */
    hooks: Type.Optional(
      Type.Object(
        {
          pre: Type.Optional(NonEmpty),
          post: Type.Optional(NonEmpty),
          timeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400, description: 'whole seconds, 1 to 86400' })),
        },
        { additionalProperties: false },
      ),
    ),
    /** Backup on change: a watcher journals changed paths; a backup starts once nothing has
     *  changed for debounceSeconds, and scans only the changed subtrees. */
    watch: Type.Optional(
      Type.Object(
        {
          enabled: Type.Optional(Type.Boolean()),
          debounceSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400, description: 'whole seconds, 1 to 86400' })),
        },
        { additionalProperties: false },
      ),
    ),
    /** Which snapshots to keep (applied by forget/prune). */
    retention: Type.Optional(
      Type.Object(
        {
          keepLast: Type.Optional(Count),
          keepHourly: Type.Optional(Count),
          keepDaily: Type.Optional(Count),
          keepWeekly: Type.Optional(Count),
          keepMonthly: Type.Optional(Count),
          keepYearly: Type.Optional(Count),
          keepWithinDays: Type.Optional(Count),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

/** An API token: its role, and where its secret is (a file, or an environment variable). */
const Token = Type.Object(
  {
    role: Type.Union([Type.Literal('reader'), Type.Literal('operator')]),
    file: Type.Optional(NonEmpty),
    env: Type.Optional(EnvName),
  },
  { additionalProperties: false },
);

/** The HTTP API: where it listens, TLS, and who may call it. */
const ApiConfig = Type.Object(
  {
    enabled: Type.Optional(Type.Boolean()),
    host: Type.Optional(NonEmpty),
    port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65_535, description: 'a TCP port, 0 to 65535' })),
    tls: Type.Optional(Type.Object({ certFile: NonEmpty, keyFile: NonEmpty }, { additionalProperties: false })),
    tokens: Type.Optional(Type.Array(Token)),
  },
  { additionalProperties: false },
);

/** The agent's configuration file (YAML). Secrets are never inline: a key file, a password
 *  file, or the name of an environment variable that holds the password. */
export const AgentConfigSchema = Type.Object(
  {
    agent: Type.Optional(
      Type.Object(
        {
          name: Type.Optional(NonEmpty),
          stateDir: Type.Optional(NonEmpty),
          jobHistoryDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650, description: 'whole days, 1 to 3650' })),
          /** Folders restore jobs may write into (default: <stateDir>/restores): an operator
           *  token cannot restore over /etc unless this says so. */
          restoreRoots: Type.Optional(Type.Array(NonEmpty, { minItems: 1 })),
        },
        { additionalProperties: false },
      ),
    ),
    api: Type.Optional(ApiConfig),
    repository: Type.Object(
      {
        path: NonEmpty,
        keyFile: Type.Optional(NonEmpty),
        passwordFile: Type.Optional(NonEmpty),
        passwordEnv: Type.Optional(EnvName),
      },
      { additionalProperties: false },
    ),
    sources: Type.Array(FolderSource, { minItems: 1 }),
    log: Type.Optional(Type.Object({ level: Type.Optional(Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace'].map((l) => Type.Literal(l)))) }, { additionalProperties: false })),
  },
  { additionalProperties: false },
);

/** The configuration as written. */
export type AgentConfigFile = Static<typeof AgentConfigSchema>;
/** A configured folder source. */
export type SourceConfig = Static<typeof FolderSource>;

/** The configuration with defaults applied and paths made absolute (relative paths are taken
 *  from the directory of the config file, so a service finds them whatever its working dir). */
export interface AgentConfig {
  readonly file: string;
  readonly agentName: string;
  readonly stateDir: string;
  readonly repository: { readonly path: string; readonly keyFile?: string; readonly passwordFile?: string; readonly passwordEnv?: string };
  readonly sources: readonly SourceConfig[];
  readonly logLevel: string;
  readonly jobHistoryDays: number;
  /** Folders restore jobs may write into (absolute). */
  readonly restoreRoots: readonly string[];
  readonly api: ApiSettings;
}

/** Where the API listens and who may call it (paths absolute). */
export interface ApiSettings {
  readonly enabled: boolean;
  readonly host: string;
  readonly port: number;
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  readonly tokens: readonly { readonly role: 'reader' | 'operator'; readonly file?: string; readonly env?: string }[];
}

/** The API's port unless configured. */
export const DEFAULT_API_PORT = 8421;
/** Days of job history kept unless configured. */
export const DEFAULT_JOB_HISTORY_DAYS = 90;

/** One problem in a config file: where, what was there, and what is allowed. */
export interface ConfigProblem {
  readonly path: string;
  readonly message: string;
}

/** Reads and validates a config file; rejects with ConfigError (E_CONFIG_INVALID) listing every
 *  problem at once. */
export async function loadAgentConfig(file: string): Promise<AgentConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`, { cause: err });
  }
  return parseAgentConfig(text, path.resolve(file));
}

/** Validates config text (see loadAgentConfig). */
export function parseAgentConfig(text: string, file: string): AgentConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${file}: not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  const problems = checkConfig(doc);
  if (problems.length > 0) {
    const lines = problems.map((p) => `  ${p.path}: ${p.message}`);
    throw new ConfigError(`${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${lines.join('\n')}`, { hint: 'fix these keys and start again; cairn agent --check-config FILE checks a file without starting' });
  }
  const c = doc as AgentConfigFile;
  const base = path.dirname(file);
  const abs = (p: string): string => path.resolve(base, p);
  return {
    file,
    agentName: c.agent?.name ?? os.hostname(),
    stateDir: abs(c.agent?.stateDir ?? 'var/state'),
    repository: {
      path: abs(c.repository.path),
      ...(c.repository.keyFile !== undefined ? { keyFile: abs(c.repository.keyFile) } : {}),
      ...(c.repository.passwordFile !== undefined ? { passwordFile: abs(c.repository.passwordFile) } : {}),
      ...(c.repository.passwordEnv !== undefined ? { passwordEnv: c.repository.passwordEnv } : {}),
    },
    sources: c.sources.map((s) => ({ ...s, paths: s.paths.map(abs) })),
    logLevel: c.log?.level ?? 'info',
    jobHistoryDays: c.agent?.jobHistoryDays ?? DEFAULT_JOB_HISTORY_DAYS,
    restoreRoots: (c.agent?.restoreRoots ?? [path.join(c.agent?.stateDir ?? 'var/state', 'restores')]).map(abs),
    api: {
      enabled: c.api?.enabled ?? true,
      host: c.api?.host ?? '127.0.0.1',
      port: c.api?.port ?? DEFAULT_API_PORT,
      ...(c.api?.tls ? { tls: { certFile: abs(c.api.tls.certFile), keyFile: abs(c.api.tls.keyFile) } } : {}),
      tokens: (c.api?.tokens ?? []).map((t) => ({ role: t.role, ...(t.file !== undefined ? { file: abs(t.file) } : {}), ...(t.env !== undefined ? { env: t.env } : {}) })),
    },
  };
}

/** Every problem in a parsed config document, schema and meaning alike. */
export function checkConfig(doc: unknown): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const seen = new Set<string>();
  for (const e of Value.Errors(AgentConfigSchema, doc)) {
    const where = keyPath(e.path);
    // a union reports each branch; one line per key is enough
    if (seen.has(where)) continue;
    seen.add(where);
    problems.push({ path: where, message: describe(e.path, e.value, e.message, e.schema) });
  }
  // the checks of meaning run on whatever parts have the right shape, so one run reports all
  if (typeof doc !== 'object' || doc === null) return problems;
  const c = doc as Partial<Record<string, unknown>>;
  const repo = c.repository;
  if (typeof repo === 'object' && repo !== null) {
    const secrets = ['keyFile', 'passwordFile', 'passwordEnv'].filter((k) => (repo as Record<string, unknown>)[k] !== undefined);
    if (secrets.length !== 1 && !('password' in repo)) {
      problems.push({ path: 'repository', message: `give exactly one of keyFile, passwordFile, passwordEnv (found ${secrets.length === 0 ? 'none' : secrets.join(', ')}); secrets are never written in the config itself` });
    }
  }
  const api = c.api;
  if (typeof api === 'object' && api !== null && Array.isArray((api as { tokens?: unknown }).tokens)) {
    ((api as { tokens: unknown[] }).tokens).forEach((t, i) => {
      if (typeof t !== 'object' || t === null) return;
      const given = ['file', 'env'].filter((k) => (t as Record<string, unknown>)[k] !== undefined);
      if (given.length !== 1 && !('token' in t) && !('value' in t)) problems.push({ path: `api.tokens[${i}]`, message: `give exactly one of file, env (found ${given.length === 0 ? 'none' : given.join(', ')}); tokens are never written in the config itself` });
    });
  }
  const names = new Set<string>();
  (Array.isArray(c.sources) ? c.sources : []).forEach((src: unknown, i) => {
    if (typeof src !== 'object' || src === null) return;
    const { name, schedule } = src as { name?: unknown; schedule?: unknown };
    if (typeof name === 'string') {
      if (names.has(name)) problems.push({ path: `sources[${i}].name`, message: `"${name}" is used by an earlier source; names must be unique` });
      names.add(name);
    }
    (Array.isArray(schedule) ? schedule : []).forEach((expr: unknown, j) => {
      const why = typeof expr === 'string' && expr !== '' ? cronProblem(expr) : undefined;
      if (why !== undefined) {
        problems.push({ path: `sources[${i}].schedule[${j}]`, message: `"${String(expr)}" is not a cron expression (${why}): use 5 or 6 fields (second? minute hour day-of-month month day-of-week), e.g. "0 */6 * * *"` });
      }
    });
  });
  return problems;
}

function keyPath(pointer: string): string {
  if (pointer === '') return '(top level)';
  return pointer
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), '');
}

function describe(pointer: string, value: unknown, message: string, schema: unknown): string {
  const shown = value === undefined ? 'missing' : JSON.stringify(value)?.slice(0, 80);
  const s = schema as { description?: string; const?: unknown; anyOf?: { const?: unknown }[] };
  if (message.startsWith('Unexpected property')) {
    const key = pointer.split('/').pop();
    if (key === 'password') return 'passwords are never written in the config: use passwordFile or passwordEnv';
    if (key === 'token' || key === 'value') return 'tokens are never written in the config: use file or env';
    return 'unknown key: remove it, or check its spelling and indentation';
  }
  if (value === undefined) return `missing: ${message.replace(/^Expected /, 'expected ')}`;
  const allowed = s.anyOf?.every((a) => a.const !== undefined) ? `one of ${s.anyOf.map((a) => JSON.stringify(a.const)).join(', ')}` : (s.description ?? message.replace(/^Expected /, ''));
  return `${shown} is not allowed: expected ${allowed}`;
}

/**
 * api: the agent's HTTP API (design §5) as a Fastify app built apart from any server, so tests
 * drive it with inject() and the agent listens with it. Routes are declared with TypeBox schemas
 * (validation, serialization and the OpenAPI document at /docs come from them); bearer tokens
 * by role guard every route but /health; errors map from cairn's codes to HTTP in one table.
 */
export * from './app.js';
export * from './auth.js';
export * from './errors.js';
export * from './metrics.js';
export * from './schemas.js';

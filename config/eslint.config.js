// Lint rules for cairn. The import-boundary rules encode the layering of the house style:
// core <- repo <- engine <- jobs <- api <- agent; core is pure (no fs, network, timers, clock, logger).
import tseslint from 'typescript-eslint';

const nodeIo = ['fs', 'fs/promises', 'net', 'http', 'https', 'http2', 'dgram', 'dns', 'tls', 'child_process', 'timers', 'timers/promises', 'worker_threads', 'cluster', 'os', 'process'];
const nodeIoPatterns = nodeIo.flatMap((m) => [`node:${m}`, m]);

/** Layers above a folder, which it must not import. */
const above = {
  core: ['repo', 'backend', 'engine', 'source', 'jobs', 'api', 'agent', 'cli'],
  repo: ['backend', 'engine', 'source', 'jobs', 'api', 'agent', 'cli'],
  backend: ['engine', 'source', 'jobs', 'api', 'agent', 'cli'],
  engine: ['backend', 'jobs', 'api', 'agent', 'cli'],
  jobs: ['api', 'agent', 'cli'],
  api: ['agent', 'cli'],
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'var/**', 'native-bench/work/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-syntax': ['error', { selector: 'ExportDefaultDeclaration', message: 'Use named exports.' }],
    },
  },
  ...Object.entries(above).map(([layer, banned]) => ({
    files: [`src/${layer}/**/*.ts`],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: banned.map((b) => `**/${b}/**`).concat(banned.map((b) => `../${b}`)), message: `${layer}/ must not import a layer above it.` },
        ],
        ...(layer === 'core' ? { paths: nodeIoPatterns.map((name) => ({ name, message: 'core/ is pure: no I/O, timers or process state.' })) } : {}),
      }],
      ...(layer === 'core' ? {
        'no-restricted-globals': ['error',
          { name: 'setTimeout', message: 'core/ takes time as an argument.' },
          { name: 'setInterval', message: 'core/ takes time as an argument.' },
          { name: 'process', message: 'core/ reads no process state.' },
          { name: 'fetch', message: 'core/ does no network I/O.' }],
        'no-restricted-properties': ['error',
          { object: 'Date', property: 'now', message: 'core/ reads no clock: take the time as an argument.' },
          { object: 'Math', property: 'random', message: 'core/ takes randomness as an argument.' },
          { object: 'performance', property: 'now', message: 'core/ reads no clock.' }],
        'no-restricted-syntax': ['error',
          { selector: 'NewExpression[callee.name="Date"][arguments.length=0]', message: 'core/ reads no clock: take the time as an argument.' },
          { selector: 'ExportDefaultDeclaration', message: 'Use named exports.' }],
      } : {}),
    },
  })),
);

// Deterministic benchmark corpus generator: a server-like tree of text, binaries, large mixed files and
// duplicates. Usage: npx tsx native-bench/corpus.ts [--small] [--files N] [--bytes B] [--seed S] [--out DIR]
import { parseArgs } from 'node:util';
import { corpusParams, CORPUS_OPTIONS, isMain } from './lib/args.js';
import { defaultCorpusDir, ensureCorpus } from './lib/corpus-gen.js';

const USAGE = `usage: npx tsx native-bench/corpus.ts [--small] [--files N] [--bytes B] [--seed S] [--out DIR]
  default: 150000 files, 3G bytes, seed 1; --small: 20000 files, 300M bytes
  --out DIR   corpus directory (tree in DIR/tree, manifest DIR/corpus.json);
              default \$CAIRN_BENCH_DIR (or /tmp/cairn-bench)/corpus-<files>f-<bytes>b-s<seed>`;

export function main(argv: string[]): void {
  const { values } = parseArgs({ args: argv, options: CORPUS_OPTIONS, strict: true });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const params = corpusParams(values);
  const c = ensureCorpus(params, values.out ?? defaultCorpusDir(params));
  console.log(JSON.stringify({ dir: c.dir, tree: c.tree, ...c.manifest }, null, 2));
}

if (isMain(import.meta.url)) {
  try {
    main(process.argv.slice(2));
  } catch (e) {
    console.error(`corpus: ${(e as Error).message}`);
    process.exit(2);
  }
}

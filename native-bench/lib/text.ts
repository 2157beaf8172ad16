// Text-like content for the corpus: source code, logs, configs, docs, CSV and SQL dumps built from a
// Zipf-weighted vocabulary, so zstd compresses it roughly 3-5x like real server text.
import type { Rng } from './rng.js';

export type TextKind = 'code' | 'log' | 'config' | 'doc' | 'csv' | 'sql';

const COMMON = ('the of and to in is for on that with as by this be from at or are an it not was data user file '
  + 'server request error value config name id time status path cache index query table key type list map node '
  + 'item count size start stop read write open close load save update delete create get set init run test '
  + 'check parse format buffer stream token session client service handler event message result option default '
  + 'local remote host port version build source target module package object string number array true false null').split(' ');
const SYL = ['ka', 'lo', 'mi', 're', 'tor', 'an', 'el', 'vin', 'so', 'qu', 'dex', 'ar', 'pen', 'ti', 'ul', 'bra',
  'cor', 'fi', 'ge', 'ho', 'ix', 'ja', 'mu', 'na', 'ox', 'pi', 'sa', 'te', 'vo', 'wy', 'zen', 'str', 'ch', 'pl'];
const KEYWORDS = ['const', 'let', 'return', 'if', 'else', 'for', 'while', 'function', 'import', 'export', 'class',
  'async', 'await', 'new', 'throw', 'try', 'catch', 'static', 'public', 'private', 'def', 'self', 'elif', 'struct'];
const LEVELS = ['INFO', 'INFO', 'INFO', 'INFO', 'DEBUG', 'DEBUG', 'WARN', 'ERROR'];

/** Where text generators draw words and phrases from. */
export interface Words {
  readonly words: string[];
  word(rng: Rng): string;
  phrase(rng: Rng): string;
}

/** A vocabulary and a Zipf lookup table, built deterministically from the corpus seed. */
export class Vocabulary implements Words {
  readonly words: string[];
  /** Recurring multi-word phrases (log message templates, boilerplate comments). */
  readonly phrases: string[];
  private readonly zipf: Uint16Array;

  constructor(rng: Rng, size = 3000) {
    const seen = new Set<string>(COMMON);
    const words = [...COMMON];
    while (words.length < size) {
      let w = '';
      const n = rng.int(1, 4);
      for (let i = 0; i < n; i++) w += rng.pick(SYL);
      if (!seen.has(w)) {
        seen.add(w);
        words.push(w);
      }
    }
    // Interleave common and invented words so the head of the Zipf curve mixes both.
    for (let i = words.length - 1; i > 0; i--) {
      const j = rng.int(0, i);
      if (i < 40 || j < 40) continue;
      [words[i], words[j]] = [words[j] ?? '', words[i] ?? ''];
    }
    this.words = words;
    // Zipf(s=1.05): table[u16] -> word index.
    const weights = words.map((_, i) => 1 / Math.pow(i + 1, 1.05));
    const total = weights.reduce((a, b) => a + b, 0);
    this.zipf = new Uint16Array(65536);
    let acc = 0;
    let idx = 0;
    for (let i = 0; i < words.length; i++) {
      acc += (weights[i] ?? 0) / total;
      const end = Math.min(65536, Math.round(acc * 65536));
      while (idx < end) this.zipf[idx++] = i;
    }
    while (idx < 65536) this.zipf[idx++] = words.length - 1;
    this.phrases = [];
    for (let i = 0; i < 400; i++) this.phrases.push(sentence(this, rng, 3, 9));
  }

  /** A recurring phrase; low indices are much more frequent. */
  phrase(rng: Rng): string {
    const f = rng.float();
    return this.phrases[Math.floor(f * f * this.phrases.length)] ?? '';
  }

  word(rng: Rng): string {
    return this.words[this.zipf[rng.u32() & 0xffff] ?? 0] ?? 'x';
  }
}

/**
 * One file's own lexicon: a few dozen words drawn from the global vocabulary that the file keeps reusing
 * (its identifiers, its table's values), so even small files repeat themselves like real ones do.
 */
class LocalWords implements Words {
  private readonly local: string[] = [];

  constructor(private readonly global: Vocabulary, rng: Rng, size: number) {
    for (let i = 0; i < size; i++) this.local.push(global.word(rng));
  }

  get words(): string[] {
    return this.global.words;
  }

  word(rng: Rng): string {
    return rng.chance(LOCAL_SHARE) ? (this.local[rng.u32() % this.local.length] ?? '') : this.global.word(rng);
  }

  phrase(rng: Rng): string {
    return this.global.phrase(rng);
  }
}

const LOCAL_SHARE = 0.75;

/** Mutable state carried across the blocks of one file (log clocks, row ids). */
export interface TextState {
  clock: number;
  row: number;
}

export function newTextState(rng: Rng): TextState {
  return { clock: 1_672_531_200_000 + rng.int(0, 365 * 86400) * 1000, row: rng.int(1, 100000) };
}

const PAD2 = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const PAD3 = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
let dayCacheKey = -1;
let dayCacheVal = '';

/** Fast ISO-8601 UTC timestamp (`YYYY-MM-DDTHH:MM:SS.mmmZ`) with the date part cached. */
function iso(ms: number): string {
  const day = Math.floor(ms / 86400000);
  if (day !== dayCacheKey) {
    dayCacheKey = day;
    dayCacheVal = new Date(day * 86400000).toISOString().slice(0, 11);
  }
  let r = ms - day * 86400000;
  const h = Math.floor(r / 3600000);
  r -= h * 3600000;
  const m = Math.floor(r / 60000);
  r -= m * 60000;
  const s = Math.floor(r / 1000);
  return `${dayCacheVal}${PAD2[h]}:${PAD2[m]}:${PAD2[s]}.${PAD3[r - s * 1000]}Z`;
}

const cap = (w: string): string => (w.length > 0 ? w[0]?.toUpperCase() + w.slice(1) : w);

function sentence(v: Words, rng: Rng, min: number, max: number): string {
  const n = rng.int(min, max);
  const parts: string[] = [];
  for (let i = 0; i < n; i++) parts.push(v.word(rng));
  return parts.join(' ');
}

function ident(v: Words, rng: Rng): string {
  return rng.chance(0.5) ? v.word(rng) + cap(v.word(rng)) : v.word(rng);
}

function codeLine(v: Words, rng: Rng, depth: number): string {
  const ind = '  '.repeat(depth);
  switch (rng.int(0, 9)) {
    case 0: return `${ind}// ${rng.chance(0.5) ? v.phrase(rng) : sentence(v, rng, 3, 12)}`;
    case 1: return `${ind}if (${ident(v, rng)}.${ident(v, rng)} > ${rng.int(0, 100)}) {`;
    case 2: return `${ind}return ${ident(v, rng)}(${ident(v, rng)}, ${rng.chance(0.5) ? 'null' : rng.int(0, 9)});`;
    case 3: return `${ind}function ${ident(v, rng)}(${ident(v, rng)}, ${ident(v, rng)}) {`;
    case 4: return `${ind}}`;
    case 5: return `${ind}import { ${ident(v, rng)}, ${ident(v, rng)} } from './${v.word(rng)}';`;
    case 6: return `${ind}this.${ident(v, rng)} = await ${ident(v, rng)}.${ident(v, rng)}('${v.word(rng)}');`;
    case 7: return '';
    default: return `${ind}${rng.pick(KEYWORDS)} ${ident(v, rng)} = ${ident(v, rng)}.${ident(v, rng)}(${ident(v, rng)});`;
  }
}

function logLine(v: Words, rng: Rng, st: TextState): string {
  st.clock += rng.int(0, 2500);
  const ts = iso(st.clock);
  const lvl = rng.pick(LEVELS);
  const extra = rng.chance(0.5) ? ` id=${(rng.u32() >>> 8).toString(16)} took=${rng.int(1, 900)}ms` : ` path=/api/v1/${v.word(rng)}/${rng.int(1, 5000)} status=${rng.chance(0.9) ? 200 : 500}`;
  const msg = rng.chance(0.85) ? v.phrase(rng) : sentence(v, rng, 3, 9);
  return `${ts} ${lvl} [${v.words[rng.int(0, 11)]}-${rng.int(1, 16)}] ${msg}${extra}`;
}

function configLine(v: Words, rng: Rng): string {
  switch (rng.int(0, 5)) {
    case 0: return `\n[${v.word(rng)}.${v.word(rng)}]`;
    case 1: return `${v.word(rng)}_${v.word(rng)} = ${rng.int(0, 65535)}`;
    case 2: return `${v.word(rng)}_${v.word(rng)} = "${sentence(v, rng, 1, 4)}"`;
    case 3: return `# ${v.phrase(rng)}`;
    case 4: return `  ${v.word(rng)}: ${rng.chance(0.5) ? 'true' : 'false'}`;
    default: return `${v.word(rng)}.${v.word(rng)}.${v.word(rng)} = /var/lib/${v.word(rng)}/${v.word(rng)}`;
  }
}

function docLine(v: Words, rng: Rng): string {
  if (rng.chance(0.08)) return `\n## ${cap(sentence(v, rng, 2, 5))}\n`;
  const n = rng.int(1, 4);
  const s: string[] = [];
  for (let i = 0; i < n; i++) s.push(cap(sentence(v, rng, 5, 18)) + '.');
  return s.join(' ');
}

function csvLine(v: Words, rng: Rng, st: TextState): string {
  st.row++;
  st.clock += rng.int(0, 60000);
  return `${st.row},${v.word(rng)},${v.word(rng)} ${v.word(rng)},${iso(st.clock).slice(0, 10)},${rng.int(0, 99999) / 100},${rng.chance(0.7) ? 'active' : 'inactive'}`;
}

function sqlLine(v: Words, rng: Rng, st: TextState): string {
  st.row++;
  st.clock += rng.int(0, 60000);
  return `INSERT INTO ${v.words[st.row % 7 + 40] ?? 't'} VALUES (${st.row}, '${v.word(rng)} ${v.word(rng)}', '${iso(st.clock).slice(0, 19)}', ${rng.int(0, 99999) / 100}, ${rng.int(0, 1)});`;
}

/** Chance that a line repeats one of the file's earlier lines (boilerplate, repeated statements). */
const REPEAT: Record<TextKind, number> = { code: 0.3, log: 0.05, config: 0.25, doc: 0.08, csv: 0.0, sql: 0.0 };

/** Exactly `size` bytes of text of the given kind. */
export function textBytes(vocab: Vocabulary, rng: Rng, kind: TextKind, size: number, st: TextState): Buffer {
  const v = new LocalWords(vocab, rng, 48);
  const buf = Buffer.allocUnsafe(size + 8192);
  let pos = 0;
  let depth = 0;
  const recent: string[] = [];
  const pRepeat = REPEAT[kind];
  while (pos < size) {
    let line: string;
    if (recent.length > 8 && rng.chance(pRepeat)) {
      line = recent[rng.int(0, recent.length - 1)] ?? '';
      pos += buf.write(line, pos, 'latin1');
      buf[pos++] = 10;
      continue;
    }
    switch (kind) {
      case 'code':
        line = codeLine(v, rng, depth);
        if (line.endsWith('{')) depth = Math.min(depth + 1, 6);
        else if (line.endsWith('}')) depth = Math.max(depth - 1, 0);
        break;
      case 'log': line = logLine(v, rng, st); break;
      case 'config': line = configLine(v, rng); break;
      case 'doc': line = docLine(v, rng); break;
      case 'csv': line = csvLine(v, rng, st); break;
      case 'sql': line = sqlLine(v, rng, st); break;
    }
    if (recent.length < 256) recent.push(line);
    else recent[rng.int(0, 255)] = line;
    pos += buf.write(line.length > 4096 ? line.slice(0, 4096) : line, pos, 'latin1');
    buf[pos++] = 10;
  }
  return buf.subarray(0, size);
}

// Machine description and the markdown section that e2e.ts prints and appends to RESULTS.md.
import { readFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import type { Manifest } from './corpus-gen.js';
import type { Verification } from './tree.js';
import type { ToolName } from './tools.js';

export interface Step {
  seconds: number;
  rssKiB: number;
  cpuSeconds: number;
}

export interface ToolResult {
  tool: ToolName;
  version: string;
  settings: string;
  skipped?: string;
  error?: string;
  /** 1-minute load average just before the tool's first step (other work on the machine skews timings). */
  loadBefore?: number;
  init?: Step;
  first?: Step;
  rerun?: Step;
  restore?: Step;
  repoBytes?: number;
  verify?: Verification;
  /** cairn's `backup --json` objects for the first backup and the no-change rerun. */
  firstJson?: Record<string, unknown>;
  rerunJson?: Record<string, unknown>;
}

export interface RunInfo {
  date: string;
  label: string;
  manifest: Manifest;
  warmSeconds: number;
  workDir: string;
  fullDiff: boolean;
}

export function machine(): string {
  let model = cpus()[0]?.model ?? 'unknown CPU';
  try {
    model = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? model;
  } catch {
    // keep os.cpus() model
  }
  const mem = (totalmem() / 2 ** 30).toFixed(1);
  return `nproc ${cpus().length}, ${model}, ${mem} GiB RAM, Linux ${release()}, node ${process.version}`;
}

const MiB = 2 ** 20;
const mbps = (bytes: number, s: Step | undefined): number | undefined => (s && s.seconds > 0 ? bytes / 1e6 / s.seconds : undefined);
const rss = (s: Step | undefined): number | undefined => (s ? s.rssKiB / 1024 : undefined);

interface Column {
  label: string;
  digits: number;
  get(r: ToolResult, corpusBytes: number): number | undefined;
}

export const COLUMNS: Column[] = [
  { label: 'first backup MB/s', digits: 1, get: (r, b) => mbps(b, r.first) },
  { label: 'first backup peak RSS MiB', digits: 0, get: (r) => rss(r.first) },
  { label: 'rerun s', digits: 2, get: (r) => r.rerun?.seconds },
  { label: 'rerun peak RSS MiB', digits: 0, get: (r) => rss(r.rerun) },
  { label: 'restore MB/s', digits: 1, get: (r, b) => mbps(b, r.restore) },
  { label: 'restore peak RSS MiB', digits: 0, get: (r) => rss(r.restore) },
  { label: 'repo MiB', digits: 1, get: (r) => (r.repoBytes !== undefined ? r.repoBytes / MiB : undefined) },
  { label: 'ratio', digits: 2, get: (r, b) => (r.repoBytes ? b / r.repoBytes : undefined) },
];

const fmt = (v: number | undefined, digits: number): string => (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits));
const row = (cells: string[]): string => `| ${cells.join(' | ')} |`;

function details(r: ToolResult): string {
  if (r.skipped) return `- ${r.tool}: skipped — ${r.skipped}`;
  const parts: string[] = [];
  if (r.loadBefore !== undefined) parts.push(`load avg before ${r.loadBefore.toFixed(2)}`);
  const s = (name: string, st: Step | undefined): void => {
    if (st) parts.push(`${name} ${st.seconds.toFixed(2)} s (cpu ${st.cpuSeconds.toFixed(1)} s)`);
  };
  s('init', r.init);
  s('first backup', r.first);
  s('rerun', r.rerun);
  s('restore', r.restore);
  if (r.verify) parts.push(`verify ${r.verify.ok ? 'OK' : 'FAILED'} (${r.verify.detail})`);
  if (r.rerunJson) parts.push(`rerun bytesRead ${String(r.rerunJson['bytesRead'])}, filesUnmodified ${String(r.rerunJson['filesUnmodified'])}`);
  if (r.firstJson) parts.push(`first bytesAdded ${String(r.firstJson['bytesAdded'])}`);
  if (r.error) parts.push(`ERROR: ${r.error}`);
  return `- ${r.tool} (${r.version}; ${r.settings}): ${parts.join('; ')}`;
}

export function renderMarkdown(info: RunInfo, results: ToolResult[]): string {
  const m = info.manifest;
  const b = m.bytes;
  const ran = results.filter((r) => !r.skipped);
  const out: string[] = [];
  out.push(`## ${info.date} — ${info.label}`, '');
  out.push(`- Machine: ${machine()}`);
  out.push(`- Tools: ${results.map((r) => `${r.tool} ${r.version} (${r.settings})`).join('; ')}`);
  out.push(`- Corpus: ${m.files} files in ${m.dirs} dirs, ${(b / 1e6).toFixed(0)} MB (${b} bytes), seed ${m.params.seed}, `
    + `${((m.dupBytes / b) * 100).toFixed(1)}% duplicate bytes, generator v${m.generatorVersion}; page cache warmed before each tool `
    + `(first read ${info.warmSeconds.toFixed(1)} s); verify: file list + sizes + sampled sha256${info.fullDiff ? ' + diff -r' : ''}; cairn's summaries: first backup read every byte, rerun none`);
  out.push(`- Wall seconds and peak RSS from GNU time; cpu = user+sys seconds; load avg = 1-minute load average before the tool ran (>0 means other work shared the cores)`);
  out.push(`- MB = 1e6 bytes, MiB = 2^20; MB/s = corpus bytes / wall seconds; ratio = corpus bytes / repo bytes (du -sb)`, '');
  out.push(row(['tool', ...COLUMNS.map((c) => c.label), 'verify']));
  out.push(row(['---', ...COLUMNS.map(() => '---:'), '---']));
  for (const r of ran) {
    const verify = r.verify ? (r.verify.ok ? 'ok' : 'FAILED') : r.error ? 'error' : '–';
    out.push(row([r.tool, ...COLUMNS.map((c) => fmt(c.get(r, b), c.digits)), verify]));
  }
  const cairn = ran.find((r) => r.tool === 'cairn');
  const peers = ran.filter((r) => r.tool !== 'cairn');
  if (cairn && peers.length > 0) {
    out.push('', row(['ratio', ...COLUMNS.map((c) => c.label)]), row(['---', ...COLUMNS.map(() => '---:')]));
    for (const p of peers) {
      out.push(row([`cairn/${p.tool}`, ...COLUMNS.map((c) => {
        const x = c.get(cairn, b);
        const y = c.get(p, b);
        return fmt(x !== undefined && y !== undefined && y !== 0 ? x / y : undefined, 2);
      })]));
    }
  }
  out.push('', ...results.map(details), '');
  return out.join('\n');
}

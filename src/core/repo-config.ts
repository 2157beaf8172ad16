import { CairnError } from './errors.js';
import { type ChunkerParams, DEFAULT_CHUNKER_PARAMS, checkChunkerParams } from './chunker.js';
import { type CompressionParams, Codec, DEFAULT_COMPRESSION } from './codec.js';
import { isHexId } from './ids.js';

/** The format version this cairn writes and reads. */
export const FORMAT_VERSION = 1;

/** cairn.json: the plaintext settings of a repository, written once at init. */
export interface RepoConfig {
  readonly version: number;
  readonly id: string;
  readonly created: string;
  readonly chunker: ChunkerParams;
  readonly pack: { readonly targetSizeBytes: number };
  readonly compression: CompressionParams;
  /** Fixed block size for disks and disk images. */
  readonly diskBlockSizeBytes: number;
}

/** 16 MiB packs: few enough objects for a blob store's list and per-request price, small enough
 *  to buffer one per writer in memory (data and tree writers: ≤ 2 × (16 + 8) MiB). */
export const DEFAULT_PACK_TARGET_BYTES = 16 * 1024 * 1024;

/** A new repository's config. */
export function newRepoConfig(id: string, created: Date, overrides: Partial<Pick<RepoConfig, 'chunker' | 'compression' | 'pack'>> = {}): RepoConfig {
  const cfg: RepoConfig = {
    version: FORMAT_VERSION,
    id,
    created: created.toISOString(),
    chunker: overrides.chunker ?? DEFAULT_CHUNKER_PARAMS,
    pack: overrides.pack ?? { targetSizeBytes: DEFAULT_PACK_TARGET_BYTES },
    compression: overrides.compression ?? DEFAULT_COMPRESSION,
    diskBlockSizeBytes: 1024 * 1024,
  };
  checkRepoConfig(cfg);
  return cfg;
}

/** Parses and checks cairn.json; rejects with E_REPO_FORMAT naming what is wrong. */
export function parseRepoConfig(bytes: Uint8Array): RepoConfig {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new CairnError('E_REPO_FORMAT', 'cairn.json is not valid JSON', { cause: err });
  }
  const cfg = v as RepoConfig;
  checkRepoConfig(cfg);
  return cfg;
}

function checkRepoConfig(cfg: RepoConfig): void {
  const bad = (what: string): never => {
    throw new CairnError('E_REPO_FORMAT', `cairn.json: ${what}`);
  };
  if (typeof cfg !== 'object' || cfg === null) bad('not an object');
  if (cfg.version !== FORMAT_VERSION) bad(`format version ${String(cfg.version)}, this cairn reads version ${FORMAT_VERSION}: upgrade cairn`);
  if (typeof cfg.id !== 'string' || !isHexId(cfg.id)) bad('id is not a 64-hex repository id');
  try {
    checkChunkerParams(cfg.chunker);
  } catch (err) {
    bad(`chunker: ${(err as Error).message}`);
  }
  const t = cfg.pack?.targetSizeBytes;
  if (!Number.isInteger(t) || t < 1024 * 1024 || t > 256 * 1024 * 1024) bad('pack.targetSizeBytes must be 1 MiB to 256 MiB');
  if (!cfg.compression || !Object.hasOwn(Codec, cfg.compression.codec)) bad(`compression.codec must be one of ${Object.keys(Codec).join(', ')}`);
  if (!Number.isInteger(cfg.diskBlockSizeBytes) || cfg.diskBlockSizeBytes < 4096) bad('diskBlockSizeBytes must be an integer ≥ 4096');
}

import { IntegrityError } from './errors.js';
import type { BlobId, SnapshotId } from './ids.js';

/** What a backup did, recorded in its snapshot. */
export interface BackupSummary {
  readonly filesNew: number;
  readonly filesChanged: number;
  readonly filesUnmodified: number;
  readonly dirs: number;
  readonly errors: number;
  /** File content bytes read from disk. */
  readonly bytesRead: number;
  /** Bytes of file content the snapshot covers. */
  readonly bytesTotal: number;
  /** Bytes added to the repository (sealed blobs, before pack overhead). */
  readonly bytesAdded: number;
  readonly blobsAdded: number;
  readonly durationMs: number;
}

/** A snapshot manifest (snapshots/<id>, sealed JSON). */
export interface Snapshot {
  readonly version: 1;
  readonly time: string;
  readonly host: string;
  readonly username: string;
  readonly agent?: string;
  readonly source: { readonly name: string; readonly kind: 'folder' | 'disk' };
  /** Absolute paths backed up, as given. */
  readonly paths: readonly string[];
  readonly excludes: readonly string[];
  readonly tags: readonly string[];
  readonly parent?: SnapshotId;
  readonly tree: BlobId;
  readonly summary: BackupSummary;
  readonly program: string;
}

/** Encodes a snapshot manifest as JSON bytes. */
export function encodeSnapshot(s: Snapshot): Buffer {
  return Buffer.from(JSON.stringify(s));
}

/** Decodes a snapshot manifest; rejects with IntegrityError when fields are missing. */
export function decodeSnapshot(bytes: Uint8Array): Snapshot {
  let s: Snapshot;
  try {
    s = JSON.parse(Buffer.from(bytes).toString('utf8')) as Snapshot;
  } catch (err) {
    throw new IntegrityError('snapshot manifest is not valid JSON', { cause: err });
  }
  if (typeof s !== 'object' || s === null) throw new IntegrityError('snapshot manifest is not a JSON object');
  if (s.version !== 1 || typeof s.tree !== 'string' || typeof s.time !== 'string' || !Array.isArray(s.paths)) {
    throw new IntegrityError('snapshot manifest has an unknown layout');
  }
  return s;
}

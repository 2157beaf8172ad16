import { IntegrityError } from './errors.js';
import type { BlobId } from './ids.js';

/** What a tree entry is. `disk` is a block device or image backed up as fixed blocks. */
export type NodeType = 'file' | 'dir' | 'symlink' | 'blockdev' | 'chardev' | 'fifo' | 'socket' | 'disk';

/** A file's content: chunk ids in order; a number stands for a hole (that many zero bytes, never
 *  stored, restored sparse). */
export type ContentRef = BlobId | number;

/** One entry of a directory tree, as stored in a tree blob. Times are integer nanoseconds since
 *  the epoch as decimal strings (they exceed 2^53); inode and device ids likewise. */
export interface TreeNode {
  /** The name as Unicode; when the name on disk is not valid UTF-8, a lossy rendering of it. */
  readonly name: string;
  /** base64 of the name's bytes, present only when they are not valid UTF-8. */
  readonly nameRaw?: string;
  readonly type: NodeType;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly user?: string;
  readonly group?: string;
  readonly mtimeNs: string;
  readonly ctimeNs: string;
  readonly atimeNs?: string;
  readonly size: number;
  readonly inode: string;
  readonly devId: string;
  readonly nlink: number;
  /** Device number of a block or character device. */
  readonly rdev?: number;
  readonly linkTarget?: string;
  /** base64 of the link target's bytes when they are not valid UTF-8. */
  readonly linkTargetRaw?: string;
  readonly content?: readonly ContentRef[];
  /** The tree blob of a directory. */
  readonly subtree?: BlobId;
}

/** A directory listing: entries sorted by the bytes of their names. */
export interface Tree {
  readonly nodes: readonly TreeNode[];
}

/** ignoreBOM: a name may start with U+FEFF, which must be kept, not eaten as a byte-order mark. */
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** Names that are plain ASCII (most) are the same in latin1 and UTF-8: no decode needed. */
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/** Splits raw name bytes (as a latin1 "byte string": one char per byte) into the stored fields. */
export function encodeName(byteString: string): { name: string; nameRaw?: string } {
  if (PRINTABLE_ASCII.test(byteString)) return { name: byteString };
  const bytes = Buffer.from(byteString, 'latin1');
  try {
    return { name: utf8.decode(bytes) };
  } catch {
    return { name: bytes.toString('utf8'), nameRaw: bytes.toString('base64') };
  }
}

/** The raw bytes of a stored name as a latin1 byte string (for file system calls). */
export function nameBytes(name: string, nameRaw: string | undefined): string {
  if (nameRaw === undefined && PRINTABLE_ASCII.test(name)) return name;
  return nameRaw !== undefined ? Buffer.from(nameRaw, 'base64').toString('latin1') : Buffer.from(name, 'utf8').toString('latin1');
}

/** The byte-string name of a node. */
export function nodeByteName(node: Pick<TreeNode, 'name' | 'nameRaw'>): string {
  return nameBytes(node.name, node.nameRaw);
}

/** Compares byte strings by bytes (latin1 strings compare by code unit, which is byte order). */
export function compareByteNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The fields of a node in the order they are serialized: a fixed order makes the encoding
 *  canonical whatever order a node's fields were set in (format v1; docs/format.md). */
const NODE_KEYS: string[] = ['name', 'nameRaw', 'type', 'mode', 'uid', 'gid', 'mtimeNs', 'ctimeNs', 'atimeNs', 'size', 'inode', 'devId', 'nlink', 'user', 'group', 'rdev', 'linkTarget', 'linkTargetRaw', 'content', 'subtree'];

/** Each field's place in NODE_KEYS. */
const KEY_RANK: Readonly<Record<string, number>> = Object.fromEntries(NODE_KEYS.map((k, i) => [k, i]));

/** `node` itself when its own fields are known ones in NODE_KEYS order already (a node built in
 *  that order, or decoded from a tree blob), else a copy with its fields in that order (not a
 *  key-list replacer: JSON.stringify with one leaves V8's fast path, 14% of a no-change backup).
 *  Fields whose value is undefined are left out either way. A backup builds its nodes in order,
 *  and the copies were ~10% of its JavaScript allocation (and kept V8's old generation busy). */
function canonical(node: TreeNode): object {
  const src = node as unknown as Record<string, unknown>;
  let last = -1;
  for (const k in src) {
    const rank = KEY_RANK[k];
    if (rank === undefined || rank <= last) return reordered(src);
    last = rank;
  }
  return src;
}

function reordered(src: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of NODE_KEYS) {
    const v = src[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** Encodes a tree as canonical JSON bytes: nodes sorted by name bytes, so a directory that did
 *  not change encodes to the same bytes and its tree blob is deduplicated. */
export function encodeTree(tree: Tree): Buffer {
  const keyed = tree.nodes.map((n) => [nodeByteName(n), n] as const);
  keyed.sort((x, y) => compareByteNames(x[0], y[0]));
  for (let i = 1; i < keyed.length; i++) {
    if (keyed[i]![0] === keyed[i - 1]![0]) throw new IntegrityError(`tree has two entries named ${JSON.stringify(keyed[i]![1].name)}`);
  }
  return Buffer.from(JSON.stringify({ nodes: keyed.map((k) => canonical(k[1])) }));
}

/** Decodes a tree blob. */
export function decodeTree(bytes: Uint8Array): Tree {
  let t: Tree;
  try {
    t = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as Tree;
  } catch (err) {
    throw new IntegrityError('tree blob is not valid JSON', { cause: err });
  }
  if (!t || !Array.isArray(t.nodes)) throw new IntegrityError('tree blob has no node list');
  return t;
}

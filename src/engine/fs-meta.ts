import type { BigIntStats } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { NodeType, TreeNode } from '../core/tree.js';
import { encodeName } from '../core/tree.js';

/** The type of a tree node for an lstat result. */
export function nodeType(st: BigIntStats): NodeType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isBlockDevice()) return 'blockdev';
  if (st.isCharacterDevice()) return 'chardev';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

/** Names of users and groups by id, read once from /etc/passwd and /etc/group (Node has no
 *  getpwuid); ids without a name are recorded by number only. */
export class IdNames {
  readonly #users: Map<number, string>;
  readonly #groups: Map<number, string>;

  private constructor(users: Map<number, string>, groups: Map<number, string>) {
    this.#users = users;
    this.#groups = groups;
  }

  /** Loads the tables; missing files give empty tables. */
  static async load(): Promise<IdNames> {
    const parse = async (file: string): Promise<Map<number, string>> => {
      const m = new Map<number, string>();
      const text = await readFile(file, 'utf8').catch(() => '');
      for (const line of text.split('\n')) {
        const f = line.split(':');
        if (f.length >= 3 && f[0] && /^\d+$/.test(f[2]!)) m.set(Number(f[2]), f[0]);
      }
      return m;
    };
    return new IdNames(await parse('/etc/passwd'), await parse('/etc/group'));
  }

  /** The user name of `uid`, if known. */
  user(uid: number): string | undefined {
    return this.#users.get(uid);
  }

  /** The group name of `gid`, if known. */
  group(gid: number): string | undefined {
    return this.#groups.get(gid);
  }
}

/** A tree node as the backup builds it: its own, so its later fields are set on it, not on a
 *  copy (see fillNode). */
export type NewNode = { -readonly [K in keyof TreeNode]: TreeNode[K] };

/** A tree node's metadata from lstat (content, subtree and link target are filled in later).
 *  Fields are set in the tree format's field order (NODE_KEYS in core/tree.ts), so encodeTree
 *  serializes the node as it is instead of copying it into that order. */
export function nodeFromStat(byteName: string, st: BigIntStats, names: IdNames): NewNode {
  const uid = Number(st.uid);
  const gid = Number(st.gid);
  const type = nodeType(st);
  const { name, nameRaw } = encodeName(byteName);
  const node: Record<string, unknown> = { name };
  if (nameRaw !== undefined) node.nameRaw = nameRaw;
  node.type = type;
  node.mode = Number(st.mode);
  node.uid = uid;
  node.gid = gid;
  node.mtimeNs = st.mtimeNs.toString();
  node.ctimeNs = st.ctimeNs.toString();
  node.size = type === 'file' ? Number(st.size) : 0;
  node.inode = st.ino.toString();
  node.devId = st.dev.toString();
  node.nlink = Number(st.nlink);
  const user = names.user(uid);
  const group = names.group(gid);
  if (user !== undefined) node.user = user;
  if (group !== undefined) node.group = group;
  if (type === 'blockdev' || type === 'chardev') node.rdev = Number(st.rdev);
  return node as unknown as NewNode;
}

/** True when a file may be taken as unchanged from its parent snapshot's node without reading
 *  it: same size, mtime, ctime, inode and device (restic's rule; ctime catches a touch -m back). */
export function unchanged(prev: TreeNode | undefined, st: BigIntStats): boolean {
  return (
    prev !== undefined &&
    prev.type === 'file' &&
    prev.content !== undefined &&
    prev.size === Number(st.size) &&
    prev.mtimeNs === st.mtimeNs.toString() &&
    prev.ctimeNs === st.ctimeNs.toString() &&
    prev.inode === st.ino.toString() &&
    prev.devId === st.dev.toString()
  );
}

/** True when every field nodeFromStat would record for `st` equals `prev`'s, so the parent
 *  snapshot's node can stand for the entry as it is (a no-change run then builds no new node,
 *  and a directory of such nodes keeps its parent's tree id without encoding or hashing it). */
export function sameMetadata(prev: TreeNode, st: BigIntStats, names: IdNames): boolean {
  const type = nodeType(st);
  const uid = Number(st.uid);
  const gid = Number(st.gid);
  return (
    prev.type === type &&
    prev.mode === Number(st.mode) &&
    prev.uid === uid &&
    prev.gid === gid &&
    prev.nlink === Number(st.nlink) &&
    prev.size === (type === 'file' ? Number(st.size) : 0) &&
    prev.mtimeNs === st.mtimeNs.toString() &&
    prev.ctimeNs === st.ctimeNs.toString() &&
    prev.inode === st.ino.toString() &&
    prev.devId === st.dev.toString() &&
    prev.user === names.user(uid) &&
    prev.group === names.group(gid) &&
    prev.rdev === (type === 'blockdev' || type === 'chardev' ? Number(st.rdev) : undefined)
  );
}

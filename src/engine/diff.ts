import type { BlobId } from '../core/ids.js';
import type { TreeNode } from '../core/tree.js';
import type { Op } from '../repo/blob-store.js';
import type { Repository } from '../repo/repository.js';
import { type BytePath, displayPath } from './progress.js';
import { TreeLoader } from './tree-loader.js';
import { walkTree } from './tree-walk.js';

/** One difference between two snapshots: added (+), removed (-), content modified (M), or only
 *  metadata changed (U: mode, owner, times). */
export interface DiffEntry {
  readonly change: '+' | '-' | 'M' | 'U';
  readonly path: string;
  readonly type: TreeNode['type'];
}

/** Differences from tree `a` to tree `b`, in path order. Subtrees with the same id are equal and
 *  skipped unread, so a diff costs in proportion to what changed. */
export async function* diffTrees(repo: Repository, a: BlobId, b: BlobId, opts: Op = {}): AsyncGenerator<DiffEntry> {
  yield* diffAt(new TreeLoader(repo.reader), a, b, '', opts);
}

async function* diffAt(trees: TreeLoader, a: BlobId | undefined, b: BlobId | undefined, prefix: BytePath, opts: Op): AsyncGenerator<DiffEntry> {
  if (a === b) return;
  const left = await trees.byName(a, opts.signal);
  const right = await trees.byName(b, opts.signal);
  const names = [...new Set([...left.keys(), ...right.keys()])].sort();
  for (const name of names) {
    const l = left.get(name);
    const r = right.get(name);
    const p = `${prefix}/${name}`;
    if (l && r && l.type === r.type) {
      if (l.type !== 'dir' && contentDiffers(l, r)) yield { change: 'M', path: displayPath(p), type: r.type };
      else if (metaDiffers(l, r)) yield { change: 'U', path: displayPath(p), type: r.type };
      if (l.type === 'dir') yield* diffAt(trees, l.subtree, r.subtree, p, opts);
      continue;
    }
    if (l) yield* side('-', trees, l, p, opts);
    if (r) yield* side('+', trees, r, p, opts);
  }
}

async function* side(change: '+' | '-', trees: TreeLoader, node: TreeNode, p: BytePath, opts: Op): AsyncGenerator<DiffEntry> {
  yield { change, path: displayPath(p), type: node.type };
  if (node.type === 'dir' && node.subtree) {
    for await (const w of walkTree(trees, node.subtree, p, opts)) yield { change, path: displayPath(w.path), type: w.node.type };
  }
}

function contentDiffers(l: TreeNode, r: TreeNode): boolean {
  if (l.size !== r.size || l.linkTarget !== r.linkTarget || l.linkTargetRaw !== r.linkTargetRaw) return true;
  const a = l.content ?? [];
  const b = r.content ?? [];
  return a.length !== b.length || a.some((c, i) => c !== b[i]);
}

function metaDiffers(l: TreeNode, r: TreeNode): boolean {
  return l.mode !== r.mode || l.uid !== r.uid || l.gid !== r.gid || l.mtimeNs !== r.mtimeNs;
}

import type { BigIntStats } from 'node:fs';
import type { BlobId } from '../core/ids.js';
import type { TreeNode } from '../core/tree.js';
import type { TreeLoader } from './tree-loader.js';

/** What a reused subtree holds, for the backup summary: files (all unmodified), their bytes,
 *  and the directories below its root. */
export interface SubtreeTally {
  files: number;
  bytes: number;
  dirs: number;
}

/** Subtrees loaded ahead of the walk of a reused directory's subdirectories. */
const PREFETCH_TREES = 8;

/** True when a directory's own entries are as the parent snapshot recorded them: creating,
 *  removing or renaming an entry changes the directory's mtime and ctime, so such a change the
 *  journal missed is still seen whenever the directory's parent is walked. A file changed in
 *  place touches neither: that is what the journal is for. */
export function sameDirEntries(prev: TreeNode, st: BigIntStats): boolean {
  return (
    prev.mtimeNs === st.mtimeNs.toString() &&
    prev.ctimeNs === st.ctimeNs.toString() &&
    prev.inode === st.ino.toString() &&
    prev.devId === st.dev.toString()
  );
}

/**
 * Counts what the parent snapshot's subtree `root` holds, reading trees only (no file system
 * call), so a backup that reuses it unread reports the same summary as one that walked it.
 * Returns undefined when the subtree cannot be reused: a tree or data blob it names is no longer
 * known to the repository (`isKnown`), or a directory has no tree. Trees are read in name order,
 * depth first, a few loads ahead, so memory is bounded by the depth of the subtree.
 */
export async function tallySubtree(trees: TreeLoader, isKnown: (id: BlobId) => boolean, root: BlobId, signal?: AbortSignal): Promise<SubtreeTally | undefined> {
  const tally: SubtreeTally = { files: 0, bytes: 0, dirs: 0 };
  const visit = async (id: BlobId): Promise<boolean> => {
    signal?.throwIfAborted();
    if (!isKnown(id)) return false;
    const subtrees: BlobId[] = [];
    for (const node of (await trees.byName(id, signal)).values()) {
      if (node.type === 'dir') {
        if (node.subtree === undefined) return false;
        tally.dirs++;
        subtrees.push(node.subtree);
      } else if (node.type === 'file') {
        if (!node.content?.every((c) => typeof c === 'number' || isKnown(c))) return false;
        tally.files++;
        tally.bytes += node.size;
      }
    }
    for (const [i, sub] of subtrees.entries()) {
      trees.prefetch(subtrees.slice(i, i + PREFETCH_TREES), signal);
      if (!(await visit(sub))) {
        trees.forget(subtrees);
        return false;
      }
    }
    return true;
  };
  return (await visit(root)) ? tally : undefined;
}

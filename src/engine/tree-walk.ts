import type { BlobId } from '../core/ids.js';
import { type TreeNode, nodeByteName } from '../core/tree.js';
import type { Op } from '../repo/blob-store.js';
import type { TreeLoader } from './tree-loader.js';
import type { BytePath } from './progress.js';

/** A node with its absolute byte path in the snapshot. */
export interface WalkedNode {
  readonly path: BytePath;
  readonly node: TreeNode;
}

/** Every node under tree `root`, depth first, parents before children, in name order. */
export async function* walkTree(trees: TreeLoader, root: BlobId, prefix: BytePath = '', opts: Op = {}): AsyncGenerator<WalkedNode> {
  const tree = await trees.load(root, opts);
  for (const node of tree.nodes) {
    const p = `${prefix}/${nodeByteName(node)}`;
    yield { path: p, node };
    if (node.type === 'dir' && node.subtree) yield* walkTree(trees, node.subtree, p, opts);
  }
}

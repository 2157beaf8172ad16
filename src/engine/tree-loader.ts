import type { BlobId } from '../core/ids.js';
import { BlobType } from '../core/pack-format.js';
import { type Tree, type TreeNode, decodeTree, nodeByteName } from '../core/tree.js';
import type { Op } from '../repo/blob-store.js';
import type { BlobReader } from '../repo/blob-reader.js';

const EMPTY = new Map<string, TreeNode>();

/** Loads tree blobs and indexes their nodes by byte name. */
export class TreeLoader {
  readonly #reader: Pick<BlobReader, 'load'>;

  constructor(reader: Pick<BlobReader, 'load'>) {
    this.#reader = reader;
  }

  /** The tree with this id. */
  async load(id: BlobId, opts: Op = {}): Promise<Tree> {
    return decodeTree(await this.#reader.load(BlobType.tree, id, opts));
  }

  /** The nodes of a tree by byte name; an empty map for no tree. Takes a prefetched load. */
  async byName(id: BlobId | undefined, signal?: AbortSignal): Promise<Map<string, TreeNode>> {
    if (id === undefined) return EMPTY;
    const ahead = this.#ahead.get(id);
    if (ahead) {
      this.#ahead.delete(id);
      return ahead;
    }
    const tree = await this.load(id, { signal });
    return new Map(tree.nodes.map((n) => [nodeByteName(n), n]));
  }

  /** Starts loading trees that byName will soon be asked for (the parent trees of the
   *  subdirectories about to be walked one after another), so their loads overlap. */
  prefetch(ids: readonly (BlobId | undefined)[], signal?: AbortSignal): void {
    for (const id of ids) {
      if (id === undefined || this.#ahead.has(id)) continue;
      const p = this.load(id, { signal }).then((t) => new Map(t.nodes.map((n) => [nodeByteName(n), n])));
      p.catch(() => undefined); // reported by the byName that takes it
      this.#ahead.set(id, p);
    }
  }

  /** Drops prefetched trees that were not taken (their directory was excluded or skipped). */
  forget(ids: readonly (BlobId | undefined)[]): void {
    for (const id of ids) if (id !== undefined) this.#ahead.delete(id);
  }

  readonly #ahead = new Map<BlobId, Promise<Map<string, TreeNode>>>();
}

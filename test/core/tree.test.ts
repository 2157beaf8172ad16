import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IntegrityError } from '../../src/core/errors.js';
import type { BlobId } from '../../src/core/ids.js';
import { type Tree, type TreeNode, compareByteNames, decodeTree, encodeName, encodeTree, nameBytes, nodeByteName } from '../../src/core/tree.js';

/** A byte string (one latin1 char per byte) of `bytes`. */
const bs = (...bytes: number[]): string => Buffer.from(bytes).toString('latin1');
const utf8bs = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');

function node(name: string, extra: Partial<TreeNode> = {}): TreeNode {
  return { ...encodeName(utf8bs(name)), type: 'file', mode: 0o100644, uid: 1000, gid: 1000, mtimeNs: '1700000000123456789', ctimeNs: '1700000000123456789', size: 0, inode: '42', devId: '2049', nlink: 1, ...extra };
}

const nodeArb: fc.Arbitrary<TreeNode> = fc.record(
  {
    name: fc.string({ minLength: 1, maxLength: 20 }),
    type: fc.constantFrom('file', 'dir', 'symlink', 'blockdev', 'chardev', 'fifo', 'socket', 'disk'),
    mode: fc.nat({ max: 0o177777 }),
    uid: fc.nat(),
    gid: fc.nat(),
    user: fc.string({ maxLength: 8 }),
    group: fc.string({ maxLength: 8 }),
    mtimeNs: fc.bigInt({ min: 0n, max: 1n << 62n }).map(String),
    ctimeNs: fc.bigInt({ min: 0n, max: 1n << 62n }).map(String),
    size: fc.nat(),
    inode: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map(String),
    devId: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map(String),
    nlink: fc.nat({ max: 1000 }),
    rdev: fc.nat(),
    linkTarget: fc.string(),
    content: fc.array(fc.oneof(fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex') as BlobId), fc.integer({ min: 1, max: 2 ** 40 })), { maxLength: 6 }),
    subtree: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex') as BlobId),
  },
  { requiredKeys: ['name', 'type', 'mode', 'uid', 'gid', 'mtimeNs', 'ctimeNs', 'size', 'inode', 'devId', 'nlink'] },
);

describe('encodeName / nameBytes', () => {
  it.each([
    ['ASCII', utf8bs('report.txt'), { name: 'report.txt' }],
    ['Unicode', utf8bs('Grüße 日本 😀'), { name: 'Grüße 日本 😀' }],
    ['a lone latin1 byte', bs(0x66, 0xe9, 0x65), { name: 'f\ufffde', nameRaw: Buffer.from([0x66, 0xe9, 0x65]).toString('base64') }],
    ['a truncated sequence', bs(0xe6, 0x97), { name: '\ufffd', nameRaw: '5pc=' }],
    ['an overlong slash', bs(0xc0, 0xaf), { name: '\ufffd\ufffd', nameRaw: 'wK8=' }],
  ])('stores %s', (_label, byteString, expected) => {
    expect(encodeName(byteString)).toEqual(expected);
    const e = encodeName(byteString);
    expect(nameBytes(e.name, e.nameRaw)).toBe(byteString);
  });

  it('round-trips any bytes, keeping nameRaw only when they are not valid UTF-8', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), (bytes) => {
        const byteString = Buffer.from(bytes).toString('latin1');
        const e = encodeName(byteString);
        expect(nameBytes(e.name, e.nameRaw)).toBe(byteString);
        expect(nodeByteName(e)).toBe(byteString);
        const valid = Buffer.from(Buffer.from(bytes).toString('utf8'), 'utf8').equals(Buffer.from(bytes));
        expect(e.nameRaw === undefined).toBe(valid);
      }),
    );
  });

  it('round-trips any Unicode name without nameRaw', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }), (name) => {
        const e = encodeName(utf8bs(name));
        expect(e).toEqual({ name });
        expect(nameBytes(e.name, e.nameRaw)).toBe(utf8bs(name));
      }),
    );
  });

  // BUG (src/core/tree.ts line 46): `new TextDecoder('utf-8', { fatal: true })` strips a leading
  // byte-order mark, so a file named "\uFEFFx" (bytes EF BB BF 78) is recorded as "x" without
  // nameRaw, and restore recreates it as "x" (two such names would also collide in encodeTree).
  // The same applies to symlink targets (engine/backup.ts uses encodeName for them).
  // Fix: `new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })`.
  it('keeps a leading byte-order mark (EF BB BF) in a name', () => {
    const byteString = bs(0xef, 0xbb, 0xbf, 0x78);
    const e = encodeName(byteString);
    expect(nameBytes(e.name, e.nameRaw)).toBe(byteString);
  });
});

describe('compareByteNames', () => {
  it('orders byte strings by their bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 12 }), fc.uint8Array({ maxLength: 12 }), (a, b) => {
        const expected = Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b)));
        expect(Math.sign(compareByteNames(Buffer.from(a).toString('latin1'), Buffer.from(b).toString('latin1')))).toBe(expected);
      }),
    );
  });
});

describe('encodeTree / decodeTree', () => {
  it('sorts nodes by the bytes of their names, not by UTF-16 or locale', () => {
    // UTF-16 order would put U+1F600 (D83D DE00) before U+FFFF; byte order puts F0… after EF….
    const raw = { ...node('ignored'), ...encodeName(bs(0xe9)) };
    const tree: Tree = { nodes: [node('b'), raw, node('é'), node('a'), node('Z'), node('B'), node('😀'), node('\uffff')] };
    const order = decodeTree(encodeTree(tree)).nodes.map((n) => Buffer.from(nodeByteName(n), 'latin1').toString('hex'));
    expect(order).toEqual(['42', '5a', '61', '62', 'c3a9', 'e9', 'efbfbf', 'f09f9880']);
  });

  it('encodes the same directory to the same bytes whatever the input order', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(nodeArb, { selector: (n) => n.name, maxLength: 10 }).chain((nodes) => fc.tuple(fc.constant(nodes), fc.shuffledSubarray(nodes, { minLength: nodes.length }))),
        ([nodes, shuffled]) => {
        expect(encodeTree({ nodes: shuffled }).equals(encodeTree({ nodes }))).toBe(true);
        },
      ),
    );
  });

  it('round-trips any tree: decode∘encode gives the sorted nodes, field for field', () => {
    fc.assert(
      fc.property(fc.uniqueArray(nodeArb, { selector: (n) => n.name, maxLength: 10 }), (nodes) => {
        const sorted = [...nodes].sort((a, b) => compareByteNames(nodeByteName(a), nodeByteName(b)));
        expect(decodeTree(encodeTree({ nodes }))).toEqual({ nodes: sorted });
      }),
    );
  });

  // BUG (src/core/tree.ts encodeTree, JSON.stringify of the nodes as given): the bytes depend on
  // the order in which each node's properties were created, so the same directory built by two
  // code paths (or two cairn versions) encodes differently and its tree blob is not deduplicated,
  // against the "canonical JSON" promise. Fix: serialize each node with a fixed key order, e.g.
  // `JSON.stringify(node, TREE_NODE_KEYS)` with the TreeNode field names in a constant array.
  it('encodes a node to the same bytes whatever the order its fields were set in', () => {
    const a = node('f', { user: 'alice', size: 5 });
    const b = Object.fromEntries(Object.entries(a).reverse()) as unknown as TreeNode;
    expect(encodeTree({ nodes: [b] }).equals(encodeTree({ nodes: [a] }))).toBe(true);
  });

  it('encodes a node in field order as it is, and any other node as if it were in that order', () => {
    fc.assert(
      fc.property(
        nodeArb.chain((n) => fc.tuple(fc.constant(n), fc.shuffledSubarray(Object.keys(n), { minLength: Object.keys(n).length }))),
        ([n, keys]) => {
          const shuffled = Object.fromEntries(keys.map((k) => [k, (n as unknown as Record<string, unknown>)[k]])) as unknown as TreeNode;
          expect(encodeTree({ nodes: [shuffled] }).equals(encodeTree({ nodes: [n] }))).toBe(true);
        },
      ),
    );
    const inOrder = node('f', { size: 5 });
    const bytes = encodeTree({ nodes: [inOrder] });
    // a field left undefined, or one a tree node does not have, is not encoded either way
    expect(encodeTree({ nodes: [{ ...inOrder, subtree: undefined }] }).equals(bytes)).toBe(true);
    expect(encodeTree({ nodes: [{ ...inOrder, scratch: 1 } as TreeNode] }).equals(bytes)).toBe(true);
    expect(encodeTree({ nodes: [{ scratch: 1, ...inOrder } as TreeNode] }).equals(bytes)).toBe(true);
  });

  it.each([
    ['the same name', [node('a'), node('a', { type: 'dir' })]],
    ['a raw name equal to another’s UTF-8 bytes', [node('a'), { ...node('x'), name: 'x', nameRaw: Buffer.from('a').toString('base64') }]],
  ])('rejects two entries with %s', (_label, nodes) => {
    expect(() => encodeTree({ nodes })).toThrow(IntegrityError);
  });

  it('keeps holes in content as numbers between chunk ids', () => {
    const id = 'ab'.repeat(32) as BlobId;
    const tree = decodeTree(encodeTree({ nodes: [node('disk.img', { type: 'disk', size: 3 << 20, content: [id, 1 << 20, id] })] }));
    expect(tree.nodes[0]!.content).toEqual([id, 1 << 20, id]);
  });

  it.each([
    ['not JSON', '{"nodes": ['],
    ['null', 'null'],
    ['no node list', '{"entries": []}'],
    ['a node list that is not an array', '{"nodes": {}}'],
  ])('rejects a tree blob that is %s (IntegrityError)', (_label, text) => {
    expect(() => decodeTree(Buffer.from(text))).toThrow(IntegrityError);
  });

  it('decodes from a view into a larger buffer', () => {
    const bytes = encodeTree({ nodes: [node('a')] });
    const big = Buffer.concat([Buffer.from('garbage'), bytes, Buffer.from('more')]);
    expect(decodeTree(big.subarray(7, 7 + bytes.length)).nodes[0]!.name).toBe('a');
  });

  it('matches the golden file (format v1)', async () => {
    const chunk = (b: number): BlobId => b.toString(16).padStart(2, '0').repeat(32) as BlobId;
    const tree: Tree = {
      nodes: [
        node('src', { type: 'dir', mode: 0o40755, subtree: chunk(0x5b), nlink: 3, user: 'alice', group: 'staff' }),
        node('notes.txt', { size: 1234, content: [chunk(0xc1)], user: 'alice', group: 'staff' }),
        node('sparse.img', { size: 3 * 1024 * 1024, content: [chunk(0xc2), 1048576, chunk(0xc3)], atimeNs: '1700000000000000001' }),
        node('link', { type: 'symlink', mode: 0o120777, linkTarget: 'notes.txt' }),
        { ...node('x'), ...encodeName(bs(0x62, 0x61, 0x64, 0xff)) },
        node('sda', { type: 'blockdev', mode: 0o60660, rdev: 2048 }),
        node('empty', { size: 0, content: [] }),
      ],
    };
    await expect(encodeTree(tree).toString('utf8') + '\n').toMatchFileSnapshot('./__golden__/tree.json');
  });
});

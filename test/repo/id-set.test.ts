import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IdSet } from '../../src/repo/id-set.js';

/** Home slots (an id's first four bytes, masked by the table's power-of-two size) from a few
 *  values at both ends of any table up to 2048 slots, so runs collide, merge and wrap around its
 *  end. */
const HOMES = [0, 1, 2, 3, 2044, 2045, 2046, 2047];
const TAILS = 40;
const idOf = (home: number, tail: number): Buffer => {
  const id = Buffer.alloc(32);
  id.writeUInt32LE(home, 0);
  id.writeUInt32LE(tail, 28);
  return id;
};
const idArb = fc.tuple(fc.constantFrom(...HOMES), fc.integer({ min: 0, max: TAILS })).map(([home, tail]) => idOf(home, tail));

describe('IdSet', () => {
  it('adds, finds and deletes as a Set of the same ids does, through colliding runs that wrap around the table and growth', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('add', 'delete', 'has'), idArb), { minLength: 20, maxLength: 400, size: 'max' }), (ops) => {
        // a small set: it grows (and rehashes) many times on the way
        const set = new IdSet(8);
        const model = new Set<string>();
        for (const [op, id] of ops) {
          const key = id.toString('hex');
          if (op === 'add') {
            expect(set.add(id)).toBe(!model.has(key));
            model.add(key);
          } else if (op === 'delete') expect(set.delete(id)).toBe(model.delete(key));
          else expect(set.has(id)).toBe(model.has(key));
          expect(set.size).toBe(model.size);
        }
        // every id the model has is found, and none other of the arbitrary's ids; so too once
        // the set has grown with rows freed by deletes
        for (const grown of [false, true]) {
          if (grown) set.reserve(2000);
          for (const home of HOMES) {
            for (let tail = 0; tail <= TAILS; tail++) expect(set.has(idOf(home, tail))).toBe(model.has(idOf(home, tail).toString('hex')));
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it('holds many ids as it grows, and loses none to deletes', () => {
    const set = new IdSet();
    const ids = Array.from({ length: 5000 }, () => randomBytes(32));
    for (const id of ids) expect(set.add(id)).toBe(true);
    expect(set.size).toBe(5000);
    for (const id of ids.slice(0, 2500)) expect(set.delete(id)).toBe(true);
    for (const id of ids.slice(0, 2500)) expect(set.has(id)).toBe(false);
    for (const id of ids.slice(2500)) expect(set.has(id)).toBe(true);
    // growing with rows freed: the freed ids stay gone, the rest found, rows taken again
    set.reserve(20_000);
    for (const id of ids.slice(0, 2500)) expect(set.has(id)).toBe(false);
    for (const id of ids.slice(2500)) expect(set.has(id)).toBe(true);
    const again = randomBytes(32);
    expect(set.insert(again)).toBeLessThan(2500);
    expect(set.rowOf(again)).toBe(set.rowOf(again));
    expect(Buffer.from(set.idAt(set.rowOf(again))).equals(again)).toBe(true);
    // the ids are copied: changing the caller's buffer changes nothing
    const kept = ids[4999]!;
    const copy = Buffer.from(kept);
    kept.fill(0);
    expect(set.has(copy)).toBe(true);
  });
});

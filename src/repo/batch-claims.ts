/** Batches in the slab that may be in flight with a claim at once; more are sent without one
 *  (a worker seals them, assist() cannot take them back). A backup's byte budget holds ~8-30
 *  batches. */
const CLAIM_SLOTS = 256;

/**
 * Which thread seals a batch in the slab: each one sent has a slot here holding its tag (from
 * the seq of its message), and the first thread to swap the tag for its own mark seals it.
 * Claims are shared memory, so a worker takes its next batch as soon as it is done with the
 * last, without waiting for the main thread to hear of it, and the main thread can still seal a
 * batch itself (assist) that no worker has started. A slot is used again only once its batch
 * has settled here (sealed by the worker and answered, or sealed by assist): a worker's message
 * for a batch assist took then finds another tag, or a mark, and is dropped.
 */
export class ClaimSlots {
  static readonly WORKER = -1;
  static readonly MAIN = -2;
  readonly buffer = new SharedArrayBuffer(CLAIM_SLOTS * Int32Array.BYTES_PER_ELEMENT);
  readonly #tags = new Int32Array(this.buffer);
  readonly #free = Array.from({ length: CLAIM_SLOTS }, (_, i) => CLAIM_SLOTS - 1 - i);

  /** A free slot for the batch sent as message `seq`, or -1 when every slot is in use. */
  take(seq: number): number {
    const claim = this.#free.pop();
    if (claim === undefined) return -1;
    Atomics.store(this.#tags, claim, tagOf(seq));
    return claim;
  }

  /** Claims the batch of message `seq` (at `claim`) for this thread: false when a worker has it. */
  claimHere(claim: number, seq: number): boolean {
    const tag = tagOf(seq);
    return Atomics.compareExchange(this.#tags, claim, tag, ClaimSlots.MAIN) === tag;
  }

  /** The slot's batch has settled: the slot may be used again. */
  give(claim: number): void {
    if (claim >= 0) this.#free.push(claim);
  }
}

/** The tag of the batch sent as message `seq`: positive (marks are negative), and not the same
 *  for two batches in flight (those are fewer than 2^30 messages apart). */
function tagOf(seq: number): number {
  return (seq % 0x3fffffff) + 1;
}

/** A worker's side of ClaimSlots (`claims` a view of its buffer): true when the worker takes the
 *  batch of message `seq`, false when the main thread has; a batch without a claim (-1) is the
 *  worker's. */
export function claimForWorker(claims: Int32Array, claim: number, seq: number): boolean {
  if (claim < 0) return true;
  const tag = tagOf(seq);
  return Atomics.compareExchange(claims, claim, tag, ClaimSlots.WORKER) === tag;
}

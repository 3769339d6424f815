/**
 * A connection's calls in flight: written, waiting for their reply, keyed by
 * request id. A batch is one call under several ids and counts once; it is
 * complete when its last reply is in.
 *
 * @module
 */

import type { PendingCall } from "./call.ts";
import type { Incoming, RequestId } from "./codec.ts";

export class InFlight {
  readonly #byId = new Map<RequestId, PendingCall>();
  /** Calls in flight; a batch counts once. */
  count = 0;

  /** An id of `call` that is already in flight here, if any (ids must be unique). */
  clash(call: PendingCall): RequestId | undefined {
    // A single call (the hot path) allocates nothing here; a batch checks all its ids.
    if (call.batch === undefined) return this.#byId.has(call.id!) ? call.id : undefined;
    return call.batch.ids.find((id) => this.#byId.has(id));
  }

  /** The call was written: it waits for the reply to each of its ids. */
  add(call: PendingCall): void {
    if (call.batch === undefined) this.#byId.set(call.id!, call);
    else for (const id of call.batch.ids) this.#byId.set(id, call);
    this.count++;
  }

  /**
   * A reply to `id` came in. Returns its call once all of the call's replies
   * are in (it is then no longer in flight), `null` while a batch still waits
   * for others, `undefined` when no call here has that id.
   */
  #reply(id: RequestId, message: Incoming): PendingCall | null | undefined {
    const call = this.#byId.get(id);
    if (call === undefined) return undefined;
    this.#byId.delete(id);
    const batch = call.batch;
    if (batch !== undefined) {
      batch.results[batch.ids.indexOf(id)] = message;
      if (--batch.remaining > 0) return null;
    }
    this.count--;
    return call;
  }

  /**
   * The call `message` settles, by its id (see `#reply`). An error with a null
   * id (JSON-RPC 2.0 §5: the server could not read a request, e.g. a batch
   * it refused) settles the one call in flight, if exactly one (a call or a
   * batch) is; else it matches nothing.
   */
  match(message: Incoming & { id: RequestId | null }): PendingCall | null | undefined {
    if (message.id !== null) return this.#reply(message.id, message);
    if (message.kind !== "error" || this.count !== 1) return undefined;
    const call = this.#byId.values().next().value!;
    this.forget(call);
    return call;
  }

  /** Forgets a call that settled without its reply (timeout, abort). */
  forget(call: PendingCall): void {
    if (call.batch !== undefined) { for (const id of call.batch.ids) this.#byId.delete(id); }
    else this.#byId.delete(call.id!);
    this.count--;
  }

  /** Every call in flight, each once, without taking them. */
  calls(): PendingCall[] {
    return [...new Set(this.#byId.values())];
  }

  /** Removes and returns every call in flight, each once. */
  takeAll(): PendingCall[] {
    const out = this.calls();
    this.#byId.clear();
    this.count = 0;
    return out;
  }
}

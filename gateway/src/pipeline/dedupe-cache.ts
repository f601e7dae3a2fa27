// The dedupe window: a bounded LRU of accepted event ids and the answer they got, so that a resend is
// answered "duplicate" with the same locations and produces no second record. Beyond the window (an
// id evicted, or a gateway restart) a resend is stored again under the same keys and the lakehouse
// drops the duplicate by event id. Entries are small (ids, URIs, hashes): about 1 KiB each with two
// images, so the default of 100,000 entries costs roughly 100 MB at most.
export class DedupeCache<V> {
  private readonly entries = new Map<string, V>();

  constructor(readonly maxEntries: number) {}

  get(id: string): V | undefined {
    const value = this.entries.get(id);
    if (value !== undefined) {
      // Refresh: Map iteration order is insertion order, so the oldest entry comes first.
      this.entries.delete(id);
      this.entries.set(id, value);
    }
    return value;
  }

  set(id: string, value: V): void {
    if (this.maxEntries === 0) return;
    this.entries.delete(id);
    this.entries.set(id, value);
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }

  get size(): number {
    return this.entries.size;
  }
}

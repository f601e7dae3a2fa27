// The partition of a record's key, as Kafka's Java client and kafkajs' default partitioner choose it
// (murmur2 of the key modulo the topic's partition count), so that a car's records stay in order in one
// partition. The records of one car share a key, so each choice is remembered per topic and key: murmur2
// in JavaScript (64-bit multiplies on Long objects) is a visible part of a record's CPU. The memory is
// bounded (started over when full) and forgotten whenever the partition counts change.
import { Partitioners } from "kafkajs";

export class PartitionChooser {
  private readonly partitioner = Partitioners.DefaultPartitioner();
  private counts = new Map<string, number>();
  private readonly known = new Map<string, number>();

  constructor(private readonly maxKeys = 10_000) {}

  /** Partitions per topic (as the topics were found or made); every remembered choice is dropped. */
  setCounts(counts: Map<string, number>): void {
    this.counts = new Map(counts);
    this.known.clear();
  }

  get remembered(): number {
    return this.known.size;
  }

  partitionFor(topic: string, key: string): number {
    const id = `${topic}\u0000${key}`;
    const known = this.known.get(id);
    if (known !== undefined) return known;
    const count = this.counts.get(topic) ?? 1;
    const partitionMetadata = Array.from({ length: count }, (_, partitionId) => ({ partitionId, leader: 0, replicas: [0], isr: [0], partitionErrorCode: 0 }));
    const partition = this.partitioner({ topic, partitionMetadata, message: { key, value: null } });
    if (this.known.size >= this.maxKeys) this.known.clear();
    this.known.set(id, partition);
    return partition;
  }
}

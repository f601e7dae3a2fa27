import { Partitioners } from "kafkajs";
import { describe, expect, it } from "vitest";
import { PartitionChooser } from "./partition-chooser.js";

function kafkajsChoice(topic: string, key: string, count: number): number {
  const partitionMetadata = Array.from({ length: count }, (_, partitionId) => ({ partitionId, leader: 0, replicas: [0], isr: [0], partitionErrorCode: 0 }));
  return Partitioners.DefaultPartitioner()({ topic, partitionMetadata, message: { key, value: null } });
}

describe("PartitionChooser", () => {
  it("chooses what kafkajs' default (Java-compatible murmur2) partitioner chooses, asked once or many times", () => {
    const chooser = new PartitionChooser();
    chooser.setCounts(new Map([["parking-entries", 6], ["parking-exits", 3]]));
    const seen = new Set<number>();
    for (let round = 0; round < 3; round++) {
      for (let car = 0; car < 200; car++) {
        for (const [topic, count] of [["parking-entries", 6], ["parking-exits", 3]] as const) {
          const key = `run-${car % 7}/CAR${car}`;
          const chosen = chooser.partitionFor(topic, key);
          expect(chosen).toBe(kafkajsChoice(topic, key, count));
          seen.add(chosen);
        }
      }
    }
    expect(seen.size).toBe(6);
  });

  it("chooses again when the partition counts change (a topic given more partitions)", () => {
    const chooser = new PartitionChooser();
    chooser.setCounts(new Map([["parking-entries", 1]]));
    const keys = Array.from({ length: 50 }, (_, i) => `run-1/CAR${i}`);
    expect(keys.map((k) => chooser.partitionFor("parking-entries", k)).every((p) => p === 0)).toBe(true);
    chooser.setCounts(new Map([["parking-entries", 12]]));
    expect(keys.map((k) => chooser.partitionFor("parking-entries", k))).toEqual(keys.map((k) => kafkajsChoice("parking-entries", k, 12)));
  });

  it("keeps at most its limit of keys and stays right past it", () => {
    const chooser = new PartitionChooser(16);
    chooser.setCounts(new Map([["t", 5]]));
    for (let i = 0; i < 100; i++) expect(chooser.partitionFor("t", `k${i}`)).toBe(kafkajsChoice("t", `k${i}`, 5));
    expect(chooser.remembered).toBeLessThanOrEqual(16);
  });
});

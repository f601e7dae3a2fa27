// What choosing a record's partition costs per record, kafkajs' default partitioner (murmur2 of the key)
// asked for every record against the gateway's PartitionChooser (the same choice, remembered per topic and
// key), over keys as a run has them (one per car). CPU time per call, both in this process:
//   cd gateway && npx tsx ../test/bench/partition-cost.ts
import { Partitioners } from "kafkajs";
import { PartitionChooser } from "../../gateway/src/exporters/kafka/partition-chooser.js";

const CARS = 50;
const N = 200_000;
const keys = Array.from({ length: N }, (_, i) => `bench-run-0123abcd/CAR${i % CARS}`);
const partitionMetadataOf = (count: number) => Array.from({ length: count }, (_, partitionId) => ({ partitionId, leader: 0, replicas: [0], isr: [0], partitionErrorCode: 0 }));

function time(label: string, fn: (key: string) => number): number {
  let sink = 0;
  for (let i = 0; i < 10_000; i++) sink += fn(keys[i] as string);
  const c0 = process.cpuUsage();
  for (const key of keys) sink += fn(key);
  const c = process.cpuUsage(c0);
  const us = (c.user + c.system) / N;
  console.log(`${label.padEnd(52)} ${us.toFixed(3).padStart(7)} µs CPU per record (checksum ${sink % 1000})`);
  return us;
}

const partitioner = Partitioners.DefaultPartitioner();
const every = time("kafkajs' partitioner for every record", (key) =>
  partitioner({ topic: "parking-entries", partitionMetadata: partitionMetadataOf(3), message: { key, value: null } }));
const chooser = new PartitionChooser();
chooser.setCounts(new Map([["parking-entries", 3]]));
const remembered = time("PartitionChooser (remembered per key)", (key) => chooser.partitionFor("parking-entries", key));
console.log(`ratio: ${(every / remembered).toFixed(1)}x less CPU per record with the chooser (${CARS} cars, ${N} records)`);

// The walls of the code's shape (ARCHITECTURE.md, "The code's shape"): receivers depend on the
// IngestConsumer interface (model/), never on the sequencer; the sequencer (pipeline/) sees the stages
// through model/stages.ts only, never a processor or an exporter; exporters never import processors or
// the sequencer; nothing but the composition root (service/) and the CLI imports service/; no import
// cycle.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SRC = dirname(fileURLToPath(import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === "generated" ? [] : sources(path);
    return e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") ? [path] : [];
  });
}

const graph = new Map<string, string[]>();
for (const file of sources(SRC)) {
  const from = relative(SRC, file);
  const imports = [...readFileSync(file, "utf8").matchAll(/^(?:import|export)[^"']*from\s+["'](\.[^"']+)["']/gm)].map((m) => normalize(join(dirname(from), (m[1] as string).replace(/\.js$/, ".ts"))));
  graph.set(from, imports);
}
const area = (path: string): string => path.split("/")[0] ?? "";

/** The imports from `from` into any of `forbidden`, as "file -> import". */
function violations(imports: ReadonlyMap<string, readonly string[]>, from: string, forbidden: readonly string[]): string[] {
  return [...imports].filter(([file]) => area(file) === from).flatMap(([file, targets]) => targets.filter((i) => forbidden.includes(area(i))).map((i) => `${file} -> ${i}`));
}

const RULES: ReadonlyArray<[string, string[]]> = [
  ["receivers", ["pipeline", "service", "exporters", "processors", "plugins"]],
  ["exporters", ["pipeline", "service", "processors", "receivers", "plugins"]],
  ["processors", ["pipeline", "service", "exporters", "receivers", "plugins"]],
  ["pipeline", ["service", "receivers", "exporters", "processors", "plugins"]],
  ["http", ["pipeline", "receivers", "exporters", "processors"]],
  ["plugins", ["pipeline", "service", "exporters", "processors", "receivers"]],
  ["model", ["pipeline", "service", "exporters", "processors", "receivers", "plugins", "config"]],
];

describe("the code's shape", () => {
  it.each(RULES)("%s imports none of %j", (from, forbidden) => {
    expect(violations(graph, from, forbidden)).toEqual([]);
  });

  it("the rules catch an exporter importing a processor and a receiver importing the sequencer", () => {
    const wrong = new Map([
      ["exporters/kafka/kafka-exporter.ts", ["processors/images/image-processor.ts", "model/outcome.ts"]],
      ["receivers/grpc/grpc-receiver.ts", ["pipeline/event-pipeline.ts"]],
      ["pipeline/event-pipeline.ts", ["exporters/s3/blob-keys.ts"]],
    ]);
    const found = RULES.flatMap(([from, forbidden]) => violations(wrong, from, forbidden));
    expect(found).toEqual([
      "receivers/grpc/grpc-receiver.ts -> pipeline/event-pipeline.ts",
      "exporters/kafka/kafka-exporter.ts -> processors/images/image-processor.ts",
      "pipeline/event-pipeline.ts -> exporters/s3/blob-keys.ts",
    ]);
  });

  it("has no import cycle", () => {
    const cycles: string[] = [];
    const state = new Map<string, "visiting" | "done">();
    const visit = (file: string, stack: string[]): void => {
      if (state.get(file) === "done") return;
      if (state.get(file) === "visiting") {
        cycles.push([...stack.slice(stack.indexOf(file)), file].join(" -> "));
        return;
      }
      state.set(file, "visiting");
      for (const next of graph.get(file) ?? []) if (graph.has(next)) visit(next, [...stack, file]);
      state.set(file, "done");
    };
    for (const file of graph.keys()) visit(file, []);
    expect(cycles).toEqual([]);
  });
});

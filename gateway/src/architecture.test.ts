// The walls of the code's shape (ARCHITECTURE.md, "The code's shape"): receivers depend on the
// IngestConsumer interface (model/), never on the sequencer; exporters never import processors or the
// sequencer; nothing but the composition root (service/) and the CLI imports service/; no import cycle.
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

describe("the code's shape", () => {
  it.each([
    ["receivers", ["pipeline", "service", "exporters", "processors"]],
    ["exporters", ["pipeline", "service", "processors", "receivers"]],
    ["processors", ["pipeline", "service", "exporters", "receivers"]],
    ["pipeline", ["service", "receivers"]],
    ["http", ["pipeline", "receivers"]],
    ["model", ["pipeline", "service", "exporters", "processors", "receivers"]],
  ])("%s imports none of %j", (from, forbidden) => {
    const bad = [...graph].filter(([file]) => area(file) === from).flatMap(([file, imports]) => imports.filter((i) => forbidden.includes(area(i))).map((i) => `${file} -> ${i}`));
    expect(bad).toEqual([]);
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

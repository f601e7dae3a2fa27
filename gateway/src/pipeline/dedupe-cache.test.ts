import { describe, expect, it } from "vitest";
import { DedupeCache } from "./dedupe-cache.js";

describe("DedupeCache", () => {
  it("keeps at most maxEntries, evicting the least recently used", () => {
    const c = new DedupeCache<number>(3);
    c.set("a", 1);
    c.set("b", 2);
    c.set("c", 3);
    expect(c.get("a")).toBe(1); // a is now the most recent
    c.set("d", 4);
    expect(c.size).toBe(3);
    expect(c.get("b")).toBeUndefined();
    expect(c.get("a")).toBe(1);
    expect(c.get("c")).toBe(3);
    expect(c.get("d")).toBe(4);
  });

  it("remembers nothing with a size of 0", () => {
    const c = new DedupeCache<number>(0);
    c.set("a", 1);
    expect(c.get("a")).toBeUndefined();
  });
});

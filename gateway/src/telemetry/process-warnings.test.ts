import { EventEmitter } from "node:events";
import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { logProcessWarnings } from "./process-warnings.js";

describe("logProcessWarnings", () => {
  it("logs a process warning as one JSON record, in place of Node's own printer", () => {
    const lines: string[] = [];
    const logger = pino({ level: "info" }, new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(...chunk.toString().split("\n").filter(Boolean)), done()) }));
    const proc = new EventEmitter();
    const printed: unknown[] = [];
    proc.on("warning", (w) => printed.push(w)); // stands for Node's printer
    logProcessWarnings(logger, proc);
    const warning = Object.assign(new Error("NodeVersionSupportWarning: later releases need node >=22.\n\nMore information ..."), { name: "Warning", code: "X1" });
    proc.emit("warning", warning);
    expect(printed).toEqual([]);
    expect(lines).toHaveLength(1);
    const record = JSON.parse(lines[0] as string) as { level: number; msg: string; warning: { name: string; code: string; message: string } };
    expect(record.level).toBe(40);
    expect(record.msg).toBe("process warning: NodeVersionSupportWarning: later releases need node >=22.");
    expect(record.warning).toEqual({ name: "Warning", code: "X1", message: warning.message });
  });
});

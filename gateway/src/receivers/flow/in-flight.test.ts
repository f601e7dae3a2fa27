import { describe, expect, it } from "vitest";
import { ConnectionFlow, InFlightLimiter } from "./in-flight.js";

function recorder() {
  const calls: string[] = [];
  return { calls, flow: { pause: () => calls.push("pause"), resume: () => calls.push("resume") } };
}

describe("in-flight limits", () => {
  it("pauses a connection at its own limit and resumes below it", async () => {
    const total = new InFlightLimiter(100);
    const r = recorder();
    const conn = new ConnectionFlow(total, 2, "block", r.flow);
    expect(await conn.admit()).toBe(true);
    expect(r.calls).toEqual([]);
    expect(await conn.admit()).toBe(true);
    expect(r.calls).toEqual(["pause"]);
    conn.done();
    expect(r.calls).toEqual(["pause", "resume"]);
    expect(total.count).toBe(1);
  });

  it("blocks on the total limit and hands the slot over on release", async () => {
    const total = new InFlightLimiter(1);
    const a = new ConnectionFlow(total, 10, "block", recorder().flow);
    const rb = recorder();
    const b = new ConnectionFlow(total, 10, "block", rb.flow);
    expect(await a.admit()).toBe(true);
    let admitted = false;
    const waiting = b.admit().then((ok) => (admitted = ok));
    await Promise.resolve();
    expect(admitted).toBe(false);
    expect(rb.calls).toEqual(["pause"]);
    a.done();
    await waiting;
    expect(admitted).toBe(true);
    // b holds the only slot now, so the total is still full and b still does not read
    expect(rb.calls).toEqual(["pause"]);
    expect(total.count).toBe(1);
    b.done();
    expect(rb.calls).toEqual(["pause", "resume"]);
    expect(total.count).toBe(0);
  });

  it("answers throttled with whenFull = reject", async () => {
    const total = new InFlightLimiter(1);
    const a = new ConnectionFlow(total, 10, "reject", recorder().flow);
    expect(await a.admit()).toBe(true);
    expect(await a.admit()).toBe(false);
    expect(a.inFlight).toBe(1);
  });
});

describe("the byte total", () => {
  it("admits while below its limit (passed by at most one message), then queues in order until bytes free", async () => {
    const total = new InFlightLimiter(100, 10);
    expect(total.tryAcquire(6)).toBe(true);
    expect(total.tryAcquire(6)).toBe(true); // 6 < 10: admitted, now 12 held
    expect(total.full).toBe(true);
    expect(total.tryAcquire(1)).toBe(false);
    const order: string[] = [];
    const first = total.acquire(3).then(() => order.push("first"));
    const second = total.acquire(8).then(() => order.push("second"));
    total.release(6); // 6 held: the first waiter (3) fits, then 9 held: still below 10, the second goes too
    await Promise.all([first, second]);
    expect(order).toEqual(["first", "second"]);
    expect(total.bytes).toBe(17);
    expect(total.count).toBe(3);
    total.release(6);
    total.release(3);
    total.release(8);
    expect([total.bytes, total.count, total.full]).toEqual([0, 0, false]);
  });

  it("a connection waits for bytes like for slots, and answers throttled with whenFull = reject", async () => {
    const total = new InFlightLimiter(100, 10);
    const rb = recorder();
    const blocking = new ConnectionFlow(total, 10, "block", rb.flow);
    const rejecting = new ConnectionFlow(total, 10, "reject", recorder().flow);
    expect(await blocking.admit(12)).toBe(true);
    expect(rb.calls).toEqual(["pause"]); // the byte total is full: every blocking connection stops reading
    expect(await rejecting.admit(1)).toBe(false);
    blocking.done(12);
    expect(rb.calls).toEqual(["pause", "resume"]);
    expect(await rejecting.admit(1)).toBe(true);
  });
});

describe("total limit with whenFull = block", () => {
  it("pauses every connection while the total is full, and resumes them when a slot frees", async () => {
    const total = new InFlightLimiter(1);
    const ra = recorder();
    const rb = recorder();
    const a = new ConnectionFlow(total, 10, "block", ra.flow);
    const b = new ConnectionFlow(total, 10, "block", rb.flow);
    expect(await a.admit()).toBe(true);
    expect(ra.calls).toEqual(["pause"]);
    expect(rb.calls).toEqual(["pause"]); // b received nothing, yet stops reading too
    a.done();
    expect(ra.calls).toEqual(["pause", "resume"]);
    expect(rb.calls).toEqual(["pause", "resume"]);
    b.close();
    expect(await a.admit()).toBe(true);
    expect(rb.calls).toEqual(["pause", "resume"]); // closed: no longer follows the total
  });
});

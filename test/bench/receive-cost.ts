// What receiving one event's bytes costs a Node.js process, before anything is done with them: the
// part of the gateway's CPU per event that the direct writer of `npm run bench` never pays, because it
// starts with the images already in its memory. A receiver child process is measured (CPU time from
// /proc) while this process sends it the same two-PNG event message (the protobuf `Event` the gateway
// receives, ~2.2 MB) over five receive paths, and waits for a one-byte answer per message:
//
//   tcp-reused   a TCP socket that reads into one reused buffer (net's `onread`) and keeps nothing: the
//                kernel's copy and the system calls, the floor of any receiver in Node.js
//   tcp-chunks   a TCP socket with Node's default reads (a new 64 KiB buffer per read), chunks dropped
//   tcp-message  the same, with the message assembled in one new buffer (what any parser needs to hand
//                a contiguous message on)
//   ws           a `ws` WebSocketServer as the gateway configures it (binary message, no compression)
//   grpc         a grpc-js bidirectional stream with the gateway's receive windows (4 / 16 MiB)
//
// Beside them, in this process: the sha256 of the event's two images, the one per-byte computation the
// direct writer does, as a same-run yardstick. Figures, with their commands, go to test/bench/RESULTS.md.
//
//   cd gateway && npx tsx ../test/bench/receive-cost.ts
//   RECEIVE_SECONDS=5 RECEIVE_STREAMS=16 RECEIVE_ROUNDS=3 RECEIVE_PATHS=tcp-reused,ws,grpc npx tsx ../test/bench/receive-cost.ts
//   RECEIVE_HOLD_MS=300 ...   (each message kept 300 ms before its answer, as the gateway keeps an event
//                             until it is stored: the buffers then outlive a young-generation collection)
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { createServer, connect, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { WebSocket, WebSocketServer } from "ws";
import { raiseReceiveWindows } from "../../gateway/src/receivers/grpc/flow-control.js";
import { median, processCpuMs, selfCpuMs } from "./measure.js";

const PATHS = ["tcp-reused", "tcp-chunks", "tcp-message", "ws", "grpc"] as const;
type Path = (typeof PATHS)[number];
const MAX_MESSAGE = 64 * 1024 * 1024;
const identity = (b: Buffer): Buffer => b;
const method: grpc.MethodDefinition<Buffer, Buffer> = {
  path: "/bench.Receive/Stream",
  requestStream: true,
  responseStream: true,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity,
};

// ---------------------------------------------------------------------------------------------------
// The receiver (child process): `receive-cost.ts serve PATH PORT LANES` prints its port, answers one
// byte per message received whole (after RECEIVE_HOLD_MS, if set).

/** Counts a length-prefixed stream (4-byte big-endian length, then the message) without keeping it,
 *  and calls `done` per message; `assemble` copies each message into one new buffer first. */
function framer(assemble: boolean, done: (held: unknown) => void): (chunk: Buffer) => void {
  let header = Buffer.alloc(0);
  let remaining = -1;
  let parts: Buffer[] = [];
  let target: Buffer | null = null;
  let filled = 0;
  return (chunk: Buffer) => {
    let at = 0;
    while (at < chunk.length) {
      if (remaining < 0) {
        const need = 4 - header.length;
        header = Buffer.concat([header, chunk.subarray(at, at + need)]);
        at += Math.min(need, chunk.length - at);
        if (header.length < 4) return;
        remaining = header.readUInt32BE(0);
        header = Buffer.alloc(0);
        if (assemble) {
          target = Buffer.allocUnsafe(remaining);
          filled = 0;
        }
      }
      const take = Math.min(remaining, chunk.length - at);
      if (assemble && target) {
        chunk.copy(target, filled, at, at + take);
        filled += take;
      } else if (!assemble) {
        parts.push(chunk); // held until the message is whole, as a parser would
      }
      at += take;
      remaining -= take;
      if (remaining === 0) {
        const held = assemble ? target : parts;
        remaining = -1;
        parts = [];
        target = null;
        done(held);
      }
    }
  };
}

/** Answers a message: at once, or after RECEIVE_HOLD_MS with the message kept until then (as the gateway
 *  keeps an event's bytes until its blobs and record are stored). */
function answerer(send: () => void): (held: unknown) => void {
  const holdMs = Number(process.env["RECEIVE_HOLD_MS"] ?? 0);
  if (holdMs <= 0) return () => send();
  const kept = new Set<unknown>();
  return (held) => {
    kept.add(held);
    setTimeout(() => {
      kept.delete(held);
      send();
    }, holdMs);
  };
}

async function serve(path: Path, port: number, lanes: number): Promise<void> {
  const ack = Buffer.from([1]);
  const listening = (p: number): void => {
    process.stdout.write(`${p}\n`);
  };
  if (path === "tcp-reused") {
    // The receiver connects to the sender (only a client socket takes `onread`), once per lane; one
    // read buffer serves them all (each callback is done with it before the next read).
    const buffer = Buffer.allocUnsafe(256 * 1024);
    let connected = 0;
    for (let i = 0; i < lanes; i++) {
      let count: (chunk: Buffer) => void = () => undefined;
      const socket: Socket = connect({
        port,
        host: "127.0.0.1",
        onread: {
          buffer,
          callback: (n: number, buf: Uint8Array) => {
            count(Buffer.from(buf.buffer, buf.byteOffset, n));
            return true;
          },
        },
      });
      count = framer(false, answerer(() => socket.write(ack)));
      socket.on("connect", () => {
        if (++connected === lanes) listening(port);
      });
    }
    return;
  }
  if (path === "tcp-chunks" || path === "tcp-message") {
    const server = createServer((socket) => {
      const count = framer(path === "tcp-message", answerer(() => socket.write(ack)));
      socket.on("data", count);
    });
    server.listen(0, "127.0.0.1", () => listening((server.address() as { port: number }).port));
    return;
  }
  if (path === "ws") {
    const wss = new WebSocketServer({ port: 0, host: "127.0.0.1", maxPayload: MAX_MESSAGE, perMessageDeflate: false });
    wss.on("connection", (ws) => {
      const answer = answerer(() => ws.send(ack));
      ws.on("message", (data) => answer(data));
    });
    wss.on("listening", () => listening((wss.address() as { port: number }).port));
    return;
  }
  const server = new grpc.Server({ "grpc.max_receive_message_length": MAX_MESSAGE, "grpc.enable_channelz": 0 });
  if (!raiseReceiveWindows(server, 4 * 1024 * 1024, 16 * 1024 * 1024)) throw new Error("grpc-js internals changed: receive windows not raised");
  server.register(method.path, (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
    const answer = answerer(() => call.write(ack));
    call.on("data", (data: Buffer) => answer(data));
    call.on("end", () => call.end());
  }, identity, identity, "bidi");
  server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => {
    if (err) throw err;
    listening(p);
  });
}

// ---------------------------------------------------------------------------------------------------
// The sender (this process).

/** One lane: send a message, wait for its answer, repeat. */
type Lane = (message: Buffer) => Promise<void>;

function oneAtATime(send: (m: Buffer) => void): { lane: Lane; answered: () => void } {
  let waiting: (() => void) | null = null;
  return {
    lane: (message) =>
      new Promise<void>((resolve) => {
        waiting = resolve;
        send(message);
      }),
    answered: () => {
      const w = waiting;
      waiting = null;
      w?.();
    },
  };
}

function framed(message: Buffer): Buffer[] {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(message.length);
  return [header, message];
}

async function openLanes(path: Path, port: number, streams: number, accept?: () => Promise<Socket>): Promise<{ lanes: Lane[]; close: () => void }> {
  const lanes: Lane[] = [];
  const closers: Array<() => void> = [];
  for (let i = 0; i < streams; i++) {
    if (path === "tcp-reused" || path === "tcp-chunks" || path === "tcp-message") {
      const socket = path === "tcp-reused" && accept ? await accept() : connect({ port, host: "127.0.0.1" });
      if (path !== "tcp-reused") await new Promise<void>((r) => socket.once("connect", () => r()));
      const l = oneAtATime((m) => {
        for (const part of framed(m)) socket.write(part);
      });
      socket.on("data", (d: Buffer) => {
        for (let k = 0; k < d.length; k++) l.answered();
      });
      lanes.push(l.lane);
      closers.push(() => socket.destroy());
    } else if (path === "ws") {
      const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false, maxPayload: MAX_MESSAGE });
      await new Promise<void>((resolve, reject) => {
        ws.once("open", () => resolve());
        ws.once("error", reject);
      });
      const l = oneAtATime((m) => ws.send(m, { binary: true }));
      ws.on("message", () => l.answered());
      lanes.push(l.lane);
      closers.push(() => ws.terminate());
    }
  }
  if (path === "grpc") {
    const Client = grpc.makeGenericClientConstructor({ Stream: method }, "Receive");
    const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { "grpc.max_send_message_length": MAX_MESSAGE }) as unknown as grpc.Client & {
      Stream: () => grpc.ClientDuplexStream<Buffer, Buffer>;
    };
    for (let i = 0; i < streams; i++) {
      const call = client.Stream();
      const l = oneAtATime((m) => call.write(m));
      call.on("data", () => l.answered());
      call.on("error", () => undefined);
      lanes.push(l.lane);
      closers.push(() => call.cancel());
    }
    closers.push(() => client.close());
  }
  return { lanes, close: () => closers.forEach((c) => c()) };
}

async function startReceiver(path: Path, lanes: number): Promise<{ child: ChildProcess; port: number; accept?: () => Promise<Socket>; stop: () => void }> {
  const self = fileURLToPath(import.meta.url);
  let port = 0;
  let accept: (() => Promise<Socket>) | undefined;
  let stopServer = (): void => undefined;
  if (path === "tcp-reused") {
    // The sender listens; every lane of the receiver connects to it.
    const pending: Socket[] = [];
    const waiters: Array<(s: Socket) => void> = [];
    const server = createServer((s) => {
      const w = waiters.shift();
      if (w) w(s);
      else pending.push(s);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    port = (server.address() as { port: number }).port;
    accept = () => new Promise<Socket>((r) => {
      const s = pending.shift();
      if (s) r(s);
      else waiters.push(r);
    });
    stopServer = () => server.close();
  }
  const child = spawn(process.execPath, ["--import", "tsx", self, "serve", path, String(port), String(lanes)], { stdio: ["ignore", "pipe", "inherit"] });
  const printed = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const line = out.split("\n")[0];
      if (out.includes("\n") && line) resolve(Number(line));
    });
    child.once("exit", (code) => reject(new Error(`receiver ${path} exited with ${code}`)));
  });
  return { child, port: path === "tcp-reused" ? port : printed, accept, stop: () => { child.kill("SIGKILL"); stopServer(); } };
}

interface Row {
  path: Path | "sha256";
  round: number;
  messages: number;
  perSecond: number;
  cpuMsPerMessage: number;
}

async function measurePath(path: Path, round: number, message: Buffer, seconds: number, streams: number): Promise<Row> {
  const receiver = await startReceiver(path, streams);
  const { lanes, close } = await openLanes(path, receiver.port, streams, receiver.accept);
  let open = false;
  let counted = 0;
  let stop = false;
  const loops = lanes.map(async (lane) => {
    while (!stop) {
      await lane(message);
      if (open) counted++;
    }
  });
  await new Promise((r) => setTimeout(r, 1000)); // warm-up
  const pid = receiver.child.pid!;
  const cpu0 = processCpuMs(pid);
  const t0 = performance.now();
  open = true;
  await new Promise((r) => setTimeout(r, seconds * 1000));
  open = false;
  const cpu1 = processCpuMs(pid);
  const elapsed = (performance.now() - t0) / 1000;
  stop = true;
  close();
  receiver.stop();
  await Promise.race([Promise.allSettled(loops), new Promise((r) => setTimeout(r, 200))]);
  return { path, round, messages: counted, perSecond: counted / elapsed, cpuMsPerMessage: (cpu1 - cpu0) / counted };
}

function sha256Row(round: number, images: Buffer[], seconds: number): Row {
  const t0 = selfCpuMs();
  const wall0 = performance.now();
  let n = 0;
  while (performance.now() - wall0 < seconds * 200) {
    for (const img of images) createHash("sha256").update(img).digest();
    n++;
  }
  return { path: "sha256", round, messages: n, perSecond: n / ((performance.now() - wall0) / 1000), cpuMsPerMessage: (selfCpuMs() - t0) / n };
}

async function main(): Promise<void> {
  const seconds = Number(process.env["RECEIVE_SECONDS"] ?? 4);
  const streams = Number(process.env["RECEIVE_STREAMS"] ?? 16);
  const rounds = Number(process.env["RECEIVE_ROUNDS"] ?? 3);
  const paths = (process.env["RECEIVE_PATHS"] ?? PATHS.join(",")).split(",") as Path[];
  for (const p of paths) if (!PATHS.includes(p)) throw new Error(`RECEIVE_PATHS: unknown path ${p} (known: ${PATHS.join(", ")})`);

  // The gateway bench's event: two 1280x720 render-like PNGs in one protobuf Event.
  const { makePng } = await import("../support/images.js");
  const { simgate } = await import("../../gateway/src/generated/simgate.js");
  const images = [await makePng(1280, 720, 1, 18), await makePng(1280, 720, 2, 18)];
  const message = Buffer.from(
    simgate.v1.Event.encode({
      eventId: "bench-receive-0001",
      runId: "bench-receive",
      eventType: "parking.entry",
      images: images.map((data, i) => ({ view: i === 0 ? "entry" : "plate", encoding: simgate.v1.ImageEncoding.IMAGE_ENCODING_PNG, width: 1280, height: 720, data })),
    }).finish(),
  );
  console.log(`message: ${(message.length / 1e6).toFixed(2)} MB (two PNGs of ${images.map((i) => (i.length / 1e6).toFixed(2)).join(" + ")} MB), ${streams} streams, ${seconds} s x ${rounds} rounds`);

  const rows: Row[] = [];
  for (let round = 1; round <= rounds; round++) {
    const order = [...paths.slice(round - 1), ...paths.slice(0, round - 1)];
    for (const path of order) {
      const row = await measurePath(path, round, message, seconds, streams);
      rows.push(row);
      console.log(`  round ${round} ${path.padEnd(11)} ${row.messages} messages, ${row.perSecond.toFixed(0)}/s, receiver ${row.cpuMsPerMessage.toFixed(3)} ms CPU per message`);
    }
    const s = sha256Row(round, images, seconds);
    rows.push(s);
    console.log(`  round ${round} sha256      ${s.cpuMsPerMessage.toFixed(3)} ms CPU per event (both images, this process)`);
  }
  const sha = median(rows.filter((r) => r.path === "sha256").map((r) => r.cpuMsPerMessage));
  console.log(`\nreceiver CPU per two-PNG event message, median over ${rounds} round(s) (and against the sha256 of its two images, ${sha.toFixed(3)} ms here):`);
  for (const path of paths) {
    const ms = rows.filter((r) => r.path === path).map((r) => r.cpuMsPerMessage);
    console.log(`  ${path.padEnd(11)} ${median(ms).toFixed(3)} ms  (rounds ${Math.min(...ms).toFixed(3)}-${Math.max(...ms).toFixed(3)})  ${(median(ms) / sha).toFixed(2)}x the sha256`);
  }
}

if (process.argv[2] === "serve") {
  void serve(process.argv[3] as Path, Number(process.argv[4] ?? 0), Number(process.argv[5] ?? 1));
} else {
  // Exit when the figures are printed: closed lanes can leave a gRPC channel or a socket's timers
  // holding the event loop open for a while, and there is nothing left to wait for.
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}

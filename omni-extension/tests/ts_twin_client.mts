// The TypeScript client's side of the Python contract test: sends the frames it is given (a file of
// ClientFrames, each preceded by its length as a 4-byte big-endian integer) to the gateway with the
// project's TypeScript gRPC client (test/support/clients.ts), in order: run start, the events over one
// stream, run end. Prints one JSON line per answer. Run with tsx:
//   node_modules/.bin/tsx omni-extension/tests/ts_twin_client.mts <frames-file> <grpc-address> [token]
import { readFileSync } from "node:fs";
import { GrpcIngest } from "../../test/support/clients.js";
import { simgate } from "../../gateway/src/generated/simgate.js";

const [file, address, token] = process.argv.slice(2);
if (!file || !address) throw new Error("usage: ts_twin_client.mts <frames-file> <grpc-address> [token]");
const bytes = readFileSync(file);
const frames: simgate.v1.ClientFrame[] = [];
for (let at = 0; at < bytes.length; ) {
  const length = bytes.readUInt32BE(at);
  frames.push(simgate.v1.ClientFrame.decode(bytes.subarray(at + 4, at + 4 + length)));
  at += 4 + length;
}
const client = new GrpcIngest(address, token);
try {
  const events = frames.flatMap((f) => (f.event ? [f.event] : []));
  for (const f of frames) if (f.runStart) console.log(JSON.stringify({ runAck: simgate.v1.RunAck.toObject(await client.startRun(f.runStart)) }));
  for (const ack of await client.streamEvents(events)) console.log(JSON.stringify({ ack: simgate.v1.Ack.toObject(ack) }));
  for (const f of frames) if (f.runEnd) console.log(JSON.stringify({ runAck: simgate.v1.RunAck.toObject(await client.endRun(f.runEnd)) }));
} finally {
  client.close();
}

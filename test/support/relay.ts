// A TCP relay in front of a service that can be frozen: while frozen it forwards nothing, so requests
// through it hang (an upload that never finishes) without the service going down.
import { connect, createServer, type Server, type Socket } from "node:net";

export interface FreezableRelay {
  port: number;
  freeze(): void;
  thaw(): void;
  close(): Promise<void>;
}

export async function freezableRelay(host: string, port: number): Promise<FreezableRelay> {
  let frozen = false;
  const held: Array<() => void> = [];
  const sockets = new Set<Socket>();
  const forward = (from: Socket, to: Socket): void => {
    from.on("data", (d: Buffer) => {
      if (frozen) held.push(() => to.write(d));
      else to.write(d);
    });
  };
  const relay: Server = createServer((client) => {
    const server = connect(port, host);
    for (const s of [client, server]) {
      sockets.add(s);
      s.on("error", () => undefined);
      s.on("close", () => sockets.delete(s));
    }
    forward(client, server);
    forward(server, client);
    client.on("close", () => server.destroy());
    server.on("close", () => client.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, "127.0.0.1", () => r()));
  return {
    port: (relay.address() as { port: number }).port,
    freeze: () => {
      frozen = true;
    },
    thaw: () => {
      frozen = false;
      for (const write of held.splice(0)) write();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => relay.close(() => r()));
    },
  };
}

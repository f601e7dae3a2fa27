// HTTP/2 receive windows for the gRPC server. grpc-js leaves Node's defaults: 64 KiB per stream and per
// connection, so a 2 MB event needs ~30 window round trips, each waiting for a turn of our event loop;
// throughput then collapses exactly when the gateway is busy. grpc-js has no public server option for
// this, so the window is raised through its session hook (best effort: if grpc-js changes its internals
// this does nothing and the defaults stay). Memory stays bounded: a paused stream holds at most one
// stream window, a connection at most one connection window.
import type * as grpc from "@grpc/grpc-js";
import type { Http2Session, Settings } from "node:http2";

interface GrpcServerInternals {
  commonServerOptions?: { settings?: Settings };
  _sessionHandler?: (http2Server: unknown) => (session: Http2Session) => void;
}

export function raiseReceiveWindows(server: grpc.Server, streamWindowBytes: number, connectionWindowBytes: number): boolean {
  const internals = server as unknown as GrpcServerInternals;
  if (!internals.commonServerOptions || typeof internals._sessionHandler !== "function") return false;
  internals.commonServerOptions.settings = { ...internals.commonServerOptions.settings, initialWindowSize: streamWindowBytes };
  const original = internals._sessionHandler.bind(server);
  internals._sessionHandler = (http2Server: unknown) => {
    const handle = original(http2Server);
    return (session: Http2Session) => {
      try {
        session.setLocalWindowSize(connectionWindowBytes);
      } catch {
        // an old runtime without setLocalWindowSize: keep the default window
      }
      handle(session);
    };
  };
  return true;
}

// HTTP/2 receive windows for the gRPC server. grpc-js leaves Node's defaults: 64 KiB per stream and per
// connection, so a 2 MB event needs ~30 window round trips, each waiting for a turn of our event loop;
// throughput then collapses exactly when the gateway is busy. grpc-js has no public server option for
// this, so the window is raised through its session hook (best effort: if grpc-js changes its internals
// this does nothing and the defaults stay). Memory stays bounded: a paused stream holds at most one
// stream window, a connection at most one connection window.
import type * as grpc from "@grpc/grpc-js";
import type { Http2Session, Settings } from "node:http2";

type SessionHandlerFactory = (http2Server: unknown) => (session: Http2Session) => void;

interface GrpcServerInternals {
  commonServerOptions?: { settings?: Settings };
  // grpc-js picks one of the two per server: the channelz variant when channelz is enabled (its default).
  _sessionHandler?: SessionHandlerFactory;
  _channelzSessionHandler?: SessionHandlerFactory;
}

export function raiseReceiveWindows(server: grpc.Server, streamWindowBytes: number, connectionWindowBytes: number): boolean {
  const internals = server as unknown as GrpcServerInternals;
  if (!internals.commonServerOptions || typeof internals._sessionHandler !== "function" || typeof internals._channelzSessionHandler !== "function") return false;
  internals.commonServerOptions.settings = { ...internals.commonServerOptions.settings, initialWindowSize: streamWindowBytes };
  const wrap = (original: SessionHandlerFactory): SessionHandlerFactory => (http2Server: unknown) => {
    const handle = original.call(server, http2Server);
    return (session: Http2Session) => {
      try {
        session.setLocalWindowSize(connectionWindowBytes);
      } catch {
        // an old runtime without setLocalWindowSize: keep the default window
      }
      handle(session);
    };
  };
  internals._sessionHandler = wrap(internals._sessionHandler);
  internals._channelzSessionHandler = wrap(internals._channelzSessionHandler);
  return true;
}

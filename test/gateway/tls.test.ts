// Optional TLS: with a certificate configured, gRPC uses TLS and the HTTP port serves HTTPS and WSS.
// And the start-up rule: without a token the gateway refuses any address but loopback.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { simgate } from "../../gateway/src/generated/simgate.js";
import { GrpcIngest, WsIngest, type UnaryError } from "../support/clients.js";
import { makeEvent } from "../support/events.js";
import { ensureGatewayBuilt, GATEWAY_MAIN, STACK, startGateway, uniqueId, type TestGateway } from "../support/gateway.js";
import { makePng } from "../support/images.js";

const TOKEN = "tls-test-token-0123456789";
let dir: string;
let ca: string;
let gw: TestGateway;
let png: Buffer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gw-tls-"));
  // A self-signed certificate for localhost / 127.0.0.1 (openssl is part of the base system).
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
    "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
  ], { stdio: "ignore" });
  ca = readFileSync(join(dir, "cert.pem"), "utf8");
  png = await makePng(64, 48, 11);
  gw = await startGateway({ token: TOKEN, tls: { certFile: join(dir, "cert.pem"), keyFile: join(dir, "key.pem"), ca } });
});

afterAll(async () => {
  expect(await gw.stop()).toBe(0);
  rmSync(dir, { recursive: true, force: true });
});

describe("TLS", () => {
  it("serves /readyz over HTTPS", async () => {
    expect(gw.httpUrl.startsWith("https://")).toBe(true);
    expect((await gw.get("/readyz")).status).toBe(200);
  });

  it("accepts events over gRPC with TLS and over WSS, with the token", async () => {
    const runId = uniqueId("tls-run");
    const image = { view: "entry", encoding: simgate.v1.ImageEncoding.IMAGE_ENCODING_PNG, width: 64, height: 48, data: png };
    const client = new GrpcIngest(gw.grpcAddress, TOKEN, ca);
    const ack = await client.sendEvent(makeEvent(runId, 1, [image]));
    expect(ack.accepted?.record?.topic).toBe(gw.topics.entries);
    client.close();
    const ws = await WsIngest.connect(gw.wsUrl, TOKEN, {}, ca);
    const wsAck = await ws.sendEvent(makeEvent(runId, 2, [image]));
    expect(wsAck.accepted?.record?.topic).toBe(gw.topics.exits);
    await ws.close();
  });

  it("refuses plaintext gRPC", async () => {
    const plain = new GrpcIngest(gw.grpcAddress, TOKEN);
    const err = (await plain.sendEvent(makeEvent(uniqueId("plain"), 1, [])).catch((e: unknown) => e)) as UnaryError;
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
    plain.close();
  });
});

describe("binding", () => {
  it("refuses to listen beyond loopback without a token, naming the setting, and exits 1", () => {
    ensureGatewayBuilt();
    const result = spawnSync(process.execPath, [GATEWAY_MAIN, "gateway"], {
      env: { PATH: process.env["PATH"] ?? "", SIMGATE_HOST: "0.0.0.0", SIMGATE_GRPC_PORT: "0", SIMGATE_HTTP_PORT: "0" },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("SIMGATE_TOKEN");
  });

  it("a gRPC port that is taken: a fatal JSON log line and stderr name the setting, exit 1", async () => {
    ensureGatewayBuilt();
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const result = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [GATEWAY_MAIN, "gateway"], {
          env: { PATH: process.env["PATH"] ?? "", SIMGATE_GRPC_PORT: String(port), SIMGATE_HTTP_PORT: "0", KAFKA_BOOTSTRAP: STACK.kafkaBootstrap, S3_ENDPOINT: STACK.s3Endpoint },
        });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        child.on("exit", (status) => resolve({ status, stdout, stderr }));
      });
      expect(result.status).toBe(1);
      expect(result.stderr).toContain("SIMGATE_GRPC_PORT");
      const fatal = result.stdout
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { level: number | string; msg: string; err?: string })
        .find((l) => l.msg === "the gateway could not start");
      expect(fatal?.err).toContain(`127.0.0.1:${port}`);
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });

  it("fails fast on an invalid key, naming it", () => {
    const result = spawnSync(process.execPath, [GATEWAY_MAIN, "gateway"], {
      env: { PATH: process.env["PATH"] ?? "", SIMGATE_GRPC_PORT: "not-a-port" },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("SIMGATE_GRPC_PORT");
  });
});

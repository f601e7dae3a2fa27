// Nessie's authentication and authorization as deployed (issue 11, H3: "any pod can move or delete main"),
// against the real Nessie server of the local stack (the version the k8s image runs): the
// application.properties of deploy/k8s/base/nessie, unchanged, with only what a test cannot have
// replaced (test/support/nessie-server.ts) - an in-memory version store instead of PostgreSQL, loopback
// ports, no cache-invalidation peers (one instance), and a local RSA key instead of the OIDC provider's
// (the same bearer-token verification, without discovery). Tokens are JWTs signed with that key, one per principal.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { type DeployedNessie, forgedNessieToken, NESSIE_READER as READER, NESSIE_WRITER as WRITER, nessieToken as token, startDeployedNessie } from "../support/nessie-server.js";

const STARTUP_DEADLINE_MS = 240_000;

let nessie: DeployedNessie | undefined;
let api = "";
let logs = (): string => "";
const dir = mkdtempSync(join(tmpdir(), "simgate-nessie-authz-"));

beforeAll(async () => {
  nessie = await startDeployedNessie({ dir, systemProperties: ["-Dnessie.version.store.type=IN_MEMORY"], startupDeadlineMs: STARTUP_DEADLINE_MS });
  api = nessie.api;
  logs = nessie.logs;
}, STARTUP_DEADLINE_MS + 30_000);

afterAll(async () => {
  await nessie?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function call(method: string, path: string, principal?: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (principal !== undefined) headers["authorization"] = `Bearer ${token(principal)}`;
  const res = await fetch(`${api}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON (401 pages)
  }
  return { status: res.status, json };
}

describe("Nessie as deployed: authentication and authorization", () => {
  test("the deployed configuration enables both (nothing in this test turns them on)", () => {
    expect(logs()).toContain("Using Nessie CEL Authorizer");
    expect(logs()).not.toMatch(/authentication \(AuthN\) and authorization \(AuthZ\) are disabled/);
  });

  test("no token, or a token the issuer did not sign: 401", async () => {
    expect((await call("GET", "/trees/main")).status).toBe(401);
    const forged = forgedNessieToken(WRITER);
    const res = await fetch(`${api}/trees/main`, { headers: { authorization: `Bearer ${forged}` } });
    expect(res.status).toBe(401);
  });

  test("another principal (any other pod's client): 403, even for reading main", async () => {
    expect((await call("GET", "/trees/main", "service-account-intruder")).status).toBe(403);
  });

  test("the reader (Trino) reads main and its history, and can neither create, move nor delete a reference", async () => {
    const main = await call("GET", "/trees/main", READER);
    expect(main.status).toBe(200);
    const hash = String((main.json["reference"] as Record<string, unknown>)["hash"]);
    expect((await call("GET", "/trees/main/history", READER)).status).toBe(200);
    expect((await call("GET", "/trees/main/entries", READER)).status).toBe(200);
    expect((await call("POST", "/trees?name=reader-branch&type=BRANCH", READER, { type: "BRANCH", name: "main", hash })).status).toBe(403);
    // Move main (assign it to a commit): refused before anything happens.
    expect((await call("PUT", `/trees/main@${hash}`, READER, { type: "BRANCH", name: "main", hash })).status).toBe(403);
  });

  test("the writer (Spark jobs, retention, GC) creates, moves and deletes references", async () => {
    const main = await call("GET", "/trees/main", WRITER);
    expect(main.status).toBe(200);
    const hash = String((main.json["reference"] as Record<string, unknown>)["hash"]);
    const created = await call("POST", "/trees?name=wap-authz-test&type=BRANCH", WRITER, { type: "BRANCH", name: "main", hash });
    expect(created.status).toBe(200);
    const branchHash = String((created.json["reference"] as Record<string, unknown>)["hash"]);
    // The reader sees it but cannot drop it; the writer can.
    expect((await call("GET", "/trees/wap-authz-test", READER)).status).toBe(200);
    expect((await call("DELETE", `/trees/wap-authz-test@${branchHash}`, READER)).status).toBe(403);
    expect((await call("DELETE", `/trees/wap-authz-test@${branchHash}`, WRITER)).status).toBe(200);
  });
});

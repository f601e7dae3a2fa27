// Nessie's authentication and authorization as deployed (issue 11, H3: "any pod can move or delete main"),
// against the real Nessie server of the local stack (the version the k8s image runs): the
// application.properties of deploy/k8s/base/nessie, unchanged, with only what a test cannot have
// replaced by system properties - an in-memory version store instead of PostgreSQL, loopback ports, no
// cache-invalidation peers (one instance), and a local RSA key instead of the OIDC provider's (quarkus.oidc.public-key:
// the same bearer-token verification, without discovery). Tokens are JWTs signed with that key, one per principal.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createSign, generateKeyPairSync } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { homedir, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const WRITER = "service-account-simgate-spark";
const READER = "service-account-simgate-trino";
const STARTUP_DEADLINE_MS = 240_000;

function versions(): Record<string, string> {
  return Object.fromEntries(
    readFileSync(join(ROOT, "deploy/local/versions.env"), "utf8")
      .split("\n")
      .filter((l) => /^[A-Z0-9_]+=/.test(l))
      .map((l) => l.split("=") as [string, string]),
  );
}

async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => ok(port));
    });
  });
}

const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const b64url = (data: Buffer | string): string => Buffer.from(data).toString("base64url");
function token(principal: string): string {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url(JSON.stringify({ alg: "RS256", typ: "JWT", kid: "test" }));
  const body = b64url(JSON.stringify({ iss: "https://idp.simgate.test/realms/simgate", sub: principal, upn: principal, preferred_username: principal, iat: now, exp: now + 3600 }));
  const signature = createSign("RSA-SHA256").update(`${head}.${body}`).sign(privateKey);
  return `${head}.${body}.${b64url(signature)}`;
}

let nessie: ChildProcess | undefined;
let api = "";
let logs = "";
const dir = mkdtempSync(join(tmpdir(), "simgate-nessie-authz-"));

beforeAll(async () => {
  const v = versions();
  const cache = process.env["SIMGATE_CACHE"] ?? join(homedir(), ".cache", "simgate");
  const jar = join(cache, `nessie-${v["NESSIE_VERSION"]}`, `nessie-quarkus-${v["NESSIE_VERSION"]}-runner.jar`);
  const java = spawnSync("bash", ["-c", `. "${ROOT}/deploy/local/lib.sh" && find_java 21`], { encoding: "utf8" }).stdout.trim();
  expect(java, "a Java 21+ runtime (deploy/local/lib.sh find_java)").not.toBe("");
  // Quarkus reads ./config/application.properties: the deployed file, but for the one line that names the
  // cluster's headless Service for cache invalidations (Nessie resolves it at start and refuses to start
  // when it cannot; this single instance has no peer).
  mkdirSync(join(dir, "config"));
  const deployed = readFileSync(join(ROOT, "deploy/k8s/base/nessie/application.properties"), "utf8");
  const peers = /^nessie\.version\.store\.persist\.cache-invalidations\.service-names=.*\n/m;
  expect(deployed).toMatch(peers);
  writeFileSync(join(dir, "config", "application.properties"), deployed.replace(peers, ""));
  const [http, management] = [await freePort(), await freePort()];
  const spki = publicKey.export({ type: "spki", format: "der" }).toString("base64");
  nessie = spawn(
    java,
    [
      "-Xmx384m",
      `-Dquarkus.http.port=${http}`,
      "-Dquarkus.http.host=127.0.0.1",
      `-Dquarkus.management.port=${management}`,
      "-Dquarkus.management.host=127.0.0.1",
      "-Dnessie.version.store.type=IN_MEMORY",
      "-Dquarkus.oidc.auth-server-url=",
      `-Dquarkus.oidc.public-key=${spki}`,
      "-jar",
      jar,
    ],
    {
      cwd: dir,
      env: {
        ...process.env,
        // The Secrets' keys (deploy/README.md, "Secrets"), as the pod gets them.
        NESSIE_OIDC_ISSUER: "https://idp.simgate.test/realms/simgate",
        NESSIE_OIDC_CLIENT_ID: "nessie",
        NESSIE_WRITER_PRINCIPAL: WRITER,
        NESSIE_READER_PRINCIPAL: READER,
        NESSIE_DB_USER: "nessie",
        NESSIE_DB_PASSWORD: "unused",
        NESSIE_CACHE_INVALIDATION_TOKEN: "unused-with-one-replica",
        SIMGATE_WAREHOUSE: "s3://simgate-warehouse/",
        S3_ENDPOINT: "http://127.0.0.1:9/",
        S3_REGION: "us-east-1",
        S3_PATH_STYLE: "true",
        S3_ACCESS_KEY: "unused",
        S3_SECRET_KEY: "unused",
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  nessie.stdout?.on("data", (d: Buffer) => (logs += d.toString()));
  nessie.stderr?.on("data", (d: Buffer) => (logs += d.toString()));
  api = `http://127.0.0.1:${http}/api/v2`;
  const deadline = Date.now() + STARTUP_DEADLINE_MS;
  for (;;) {
    if (nessie.exitCode !== null) throw new Error(`Nessie exited (${nessie.exitCode}):\n${logs.slice(-3000)}`);
    const answered = await fetch(`${api}/config`, { headers: { authorization: `Bearer ${token(READER)}` } }).then(
      (r) => r.status,
      () => 0,
    );
    if (answered !== 0) break;
    if (Date.now() > deadline) throw new Error(`Nessie did not answer within ${STARTUP_DEADLINE_MS} ms:\n${logs.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}, STARTUP_DEADLINE_MS + 30_000);

afterAll(async () => {
  if (nessie && nessie.exitCode === null) {
    nessie.kill("SIGTERM");
    await new Promise((r) => nessie?.once("exit", r));
  }
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
    expect(logs).toContain("Using Nessie CEL Authorizer");
    expect(logs).not.toMatch(/authentication \(AuthN\) and authorization \(AuthZ\) are disabled/);
  });

  test("no token, or a token the issuer did not sign: 401", async () => {
    expect((await call("GET", "/trees/main")).status).toBe(401);
    const forged = `${token(WRITER).split(".").slice(0, 2).join(".")}.${b64url("not-a-signature")}`;
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

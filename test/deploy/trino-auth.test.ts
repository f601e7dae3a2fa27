// Trino's client authentication as deployed (issue 11, H3), against the real Trino server (the version of
// the k8s image, trinodb/trino in components/images, which the local stack caches): the coordinator's
// config.properties and password-authenticator.properties of deploy/k8s/base/trino, with only the ports,
// the file locations and the plugin directory changed, and the dev overlay's certificate and password
// file. Clients need HTTPS and a password of the file; plain HTTP carries no user requests.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { homedir, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { load, loadAll } from "js-yaml";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { freePort } from "../support/ports.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const STARTUP_DEADLINE_MS = 300_000;
const SERVER_NAME = "trino.simgate.svc";

const devSecrets = Object.fromEntries(
  loadAll(readFileSync(join(ROOT, "deploy/k8s/overlays/dev/secrets/secrets.yaml"), "utf8")).map((d) => {
    const s = d as { metadata: { name: string }; stringData: Record<string, string> };
    return [s.metadata.name, s.stringData];
  }),
) as Record<string, Record<string, string>>;
const trinoVersion = (load(readFileSync(join(ROOT, "deploy/k8s/components/images/kustomization.yaml"), "utf8")) as { images: { name: string; newTag: string }[] }).images.find((i) => i.name === "trino")?.newTag as string;
const supersetUri = new URL(String(devSecrets["simgate-superset"]?.["trino-uri"]).replace(/^trino:/, "https:"));
const USER = decodeURIComponent(supersetUri.username);
const PASSWORD = decodeURIComponent(supersetUri.password);
const CA = String(devSecrets["trino-tls"]?.["ca.crt"]);

let trino: ChildProcess | undefined;
let logs = "";
let httpPort = 0;
let httpsPort = 0;
const dir = mkdtempSync(join(tmpdir(), "simgate-trino-auth-"));

interface Reply {
  status: number;
  body: string;
}
/** A request to the HTTPS port, verifying the certificate against the CA as Superset does. */
function https(method: string, path: string, auth?: string, body?: string): Promise<Reply> {
  return new Promise((ok, fail) => {
    const req = httpsRequest(
      { host: "127.0.0.1", port: httpsPort, method, path, ca: CA, servername: SERVER_NAME, headers: { "X-Trino-User": USER, ...(auth ? { authorization: `Basic ${Buffer.from(auth).toString("base64")}` } : {}) } },
      (res) => {
        let data = "";
        res.on("data", (c: Buffer) => (data += c.toString()));
        res.on("end", () => ok({ status: res.statusCode ?? 0, body: data }));
      },
    );
    req.on("error", fail);
    req.end(body);
  });
}

beforeAll(async () => {
  const cache = process.env["SIMGATE_CACHE"] ?? join(homedir(), ".cache", "simgate");
  const home = join(cache, `trino-server-${trinoVersion}`);
  expect(existsSync(join(home, "lib")), `${home} (bash scripts/setup fetches Trino ${trinoVersion} for the local stack)`).toBe(true);
  // The file authenticator is a plugin of its own (the k8s image has every plugin; deploy/local/fetch keeps it).
  expect(existsSync(join(home, "plugin", "password-authenticators")), `${home}/plugin/password-authenticators (kept by deploy/local/fetch)`).toBe(true);
  const java = spawnSync("bash", ["-c", `. "${ROOT}/deploy/local/lib.sh" && find_java 24`], { encoding: "utf8" }).stdout.trim();
  expect(java, "a Java 24+ runtime for Trino (deploy/local/lib.sh find_java)").not.toBe("");
  [httpPort, httpsPort] = [await freePort(), await freePort()];
  for (const d of ["etc", "tls", "users", "catalog", "data"]) mkdirSync(join(dir, d));
  writeFileSync(join(dir, "tls", "tls-combined.pem"), String(devSecrets["trino-tls"]?.["tls-combined.pem"]));
  writeFileSync(join(dir, "users", "password.db"), String(devSecrets["trino-users"]?.["password.db"]));
  const base = join(ROOT, "deploy/k8s/base/trino/coordinator");
  const config = readFileSync(join(base, "config.properties"), "utf8")
    .replace(/^http-server\.http\.port=.*$/m, `http-server.http.port=${httpPort}`)
    .replace(/^http-server\.https\.port=.*$/m, `http-server.https.port=${httpsPort}`)
    .replace(/^discovery\.uri=.*$/m, `discovery.uri=http://127.0.0.1:${httpPort}`)
    .replace(/^http-server\.https\.keystore\.path=\/etc\/trino-tls\//m, `http-server.https.keystore.path=${dir}/tls/`)
    .replace(/^query\.max-memory=.*$/m, "query.max-memory=256MB")
    .replace(/^query\.max-memory-per-node=.*$/m, "query.max-memory-per-node=256MB");
  expect(config).toContain(`keystore.path=${dir}/tls/tls-combined.pem`);
  writeFileSync(
    join(dir, "etc", "config.properties"),
    `${config}password-authenticator.config-files=${dir}/etc/password-authenticator.properties\ncatalog.config-dir=${dir}/catalog\nplugin.dir=${home}/plugin\n`,
  );
  const authenticator = readFileSync(join(base, "password-authenticator.properties"), "utf8").replace("/etc/trino-users/", `${dir}/users/`);
  expect(authenticator).toContain(`${dir}/users/password.db`);
  writeFileSync(join(dir, "etc", "password-authenticator.properties"), authenticator);
  trino = spawn(
    java,
    [
      "-Xms512m",
      "-Xmx1g",
      "-XX:+UseG1GC",
      "-Djdk.attach.allowAttachSelf=true",
      "-XX:+EnableDynamicAgentLoading",
      "--enable-native-access=ALL-UNNAMED",
      "-Dnode.environment=simgate",
      "-Dnode.id=trino-auth-test",
      `-Dnode.data-dir=${dir}/data`,
      "-Dnode.bind-ip=127.0.0.1",
      "-Dnode.internal-address=127.0.0.1",
      `-Dconfig=${dir}/etc/config.properties`,
      "-Dlog.enable-console=true",
      "-cp",
      `${home}/lib/*`,
      "io.trino.server.TrinoServer",
    ],
    { cwd: dir, env: { ...process.env, TRINO_SHARED_SECRET: String(devSecrets["trino-internal"]?.["shared-secret"]) }, stdio: ["ignore", "pipe", "pipe"] },
  );
  trino.stdout?.on("data", (d: Buffer) => (logs += d.toString()));
  trino.stderr?.on("data", (d: Buffer) => (logs += d.toString()));
  const deadline = Date.now() + STARTUP_DEADLINE_MS;
  for (;;) {
    if (trino.exitCode !== null) throw new Error(`Trino exited (${trino.exitCode}):\n${logs.slice(-4000)}`);
    const info = await https("GET", "/v1/info").catch(() => undefined);
    if (info?.status === 200 && !(JSON.parse(info.body) as { starting: boolean }).starting) break;
    if (Date.now() > deadline) throw new Error(`Trino did not start within ${STARTUP_DEADLINE_MS} ms:\n${logs.slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 2000));
  }
}, STARTUP_DEADLINE_MS + 30_000);

afterAll(async () => {
  if (trino && trino.exitCode === null) {
    trino.kill("SIGTERM");
    await new Promise((r) => trino?.once("exit", r));
  }
  rmSync(dir, { recursive: true, force: true });
});

describe("Trino as deployed: HTTPS and the password file", () => {
  test("a query without a password, or with a wrong one, is refused (401)", async () => {
    expect((await https("POST", "/v1/statement", undefined, "SELECT 1")).status).toBe(401);
    expect((await https("POST", "/v1/statement", `${USER}:wrong-password`, "SELECT 1")).status).toBe(401);
    expect((await https("POST", "/v1/statement", `nobody:${PASSWORD}`, "SELECT 1")).status).toBe(401);
  });

  test("Superset's user and password (the dev Secrets) run a query over HTTPS, the certificate verified for trino.simgate.svc", async () => {
    const first = await https("POST", "/v1/statement", `${USER}:${PASSWORD}`, "SELECT 1");
    expect(first.status, first.body).toBe(200);
    let next = (JSON.parse(first.body) as { nextUri?: string }).nextUri;
    let state = "";
    const deadline = Date.now() + 60_000;
    while (next !== undefined && Date.now() < deadline) {
      const page = await https("GET", new URL(next).pathname, `${USER}:${PASSWORD}`);
      const json = JSON.parse(page.body) as { nextUri?: string; stats: { state: string }; data?: unknown[][] };
      state = json.stats.state;
      if (json.data !== undefined) expect(json.data).toEqual([[1]]);
      next = json.nextUri;
    }
    expect(state).toBe("FINISHED");
  });

  test("plain HTTP carries no user's request", async () => {
    const auth = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString("base64")}`;
    const res = await fetch(`http://127.0.0.1:${httpPort}/v1/statement`, { method: "POST", body: "SELECT 1", headers: { "X-Trino-User": USER, authorization: auth } });
    expect([401, 403]).toContain(res.status);
    const anonymous = await fetch(`http://127.0.0.1:${httpPort}/v1/statement`, { method: "POST", body: "SELECT 1", headers: { "X-Trino-User": USER } });
    expect([401, 403]).toContain(anonymous.status);
  });
});

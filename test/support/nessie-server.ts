// The real Nessie server of the local stack (the jar deploy/local/fetch caches, the version the k8s image
// runs) started on the application.properties of deploy/k8s/base/nessie, for the tests that check the
// deployed configuration. Only what a test cannot have is replaced, by system properties the caller
// passes: loopback ports, the version store's address, and a local RSA key instead of the OIDC
// provider's (quarkus.oidc.public-key: the same bearer-token verification, without discovery). One line
// is dropped: the cluster's cache-invalidation Service, which Nessie resolves at start (one instance
// here has no peer). Tokens are JWTs signed with that key, one per principal.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createSign, generateKeyPairSync } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "./ports.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const NESSIE_WRITER = "service-account-simgate-spark";
export const NESSIE_READER = "service-account-simgate-trino";
const ISSUER = "https://idp.simgate.test/realms/simgate";

export function stackVersions(): Record<string, string> {
  return Object.fromEntries(
    readFileSync(join(ROOT, "deploy/local/versions.env"), "utf8")
      .split("\n")
      .filter((l) => /^[A-Z0-9_]+=/.test(l))
      .map((l) => l.split("=") as [string, string]),
  );
}

export { freePort };

const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const b64url = (data: Buffer | string): string => Buffer.from(data).toString("base64url");

/** A bearer token for `principal`, signed with the key the started servers trust. */
export function nessieToken(principal: string): string {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url(JSON.stringify({ alg: "RS256", typ: "JWT", kid: "test" }));
  const body = b64url(JSON.stringify({ iss: ISSUER, sub: principal, upn: principal, preferred_username: principal, iat: now, exp: now + 3600 }));
  const signature = createSign("RSA-SHA256").update(`${head}.${body}`).sign(privateKey);
  return `${head}.${body}.${b64url(signature)}`;
}

/** A token whose signature is not the trusted key's. */
export function forgedNessieToken(principal: string): string {
  return `${nessieToken(principal).split(".").slice(0, 2).join(".")}.${b64url("not-a-signature")}`;
}

export interface DeployedNessie {
  /** http://127.0.0.1:<port>/api/v2 */
  readonly api: string;
  /** Everything the server printed so far. */
  logs(): string;
  /** SIGTERM, and wait for the exit. Safe to call twice. */
  stop(): Promise<void>;
}

export interface DeployedNessieOptions {
  /** Working directory (Quarkus reads ./config/application.properties from it). */
  dir: string;
  /** Extra -D options: the version store's type or address, for instance. */
  systemProperties?: string[];
  /** Extra environment (the Secrets' keys the pod gets); the defaults fill the rest with unused values. */
  env?: Record<string, string>;
  startupDeadlineMs?: number;
}

export async function startDeployedNessie(options: DeployedNessieOptions): Promise<DeployedNessie> {
  const v = stackVersions();
  const cache = process.env["SIMGATE_CACHE"] ?? join(homedir(), ".cache", "simgate");
  const jar = join(cache, `nessie-${v["NESSIE_VERSION"]}`, `nessie-quarkus-${v["NESSIE_VERSION"]}-runner.jar`);
  const java = spawnSync("bash", ["-c", `. "${ROOT}/deploy/local/lib.sh" && find_java 21`], { encoding: "utf8" }).stdout.trim();
  if (java === "") throw new Error("no Java 21+ runtime for Nessie (deploy/local/lib.sh find_java)");
  mkdirSync(join(options.dir, "config"), { recursive: true });
  const deployed = readFileSync(join(ROOT, "deploy/k8s/base/nessie/application.properties"), "utf8");
  const peers = /^nessie\.version\.store\.persist\.cache-invalidations\.service-names=.*\n/m;
  if (!peers.test(deployed)) throw new Error("deploy/k8s/base/nessie/application.properties no longer names the cache-invalidation peers");
  writeFileSync(join(options.dir, "config", "application.properties"), deployed.replace(peers, ""));
  const [http, management] = [await freePort(), await freePort()];
  const spki = publicKey.export({ type: "spki", format: "der" }).toString("base64");
  const child: ChildProcess = spawn(
    java,
    [
      "-Xmx384m",
      // A short-lived test server: C1 only and the serial collector start it on less CPU.
      "-XX:TieredStopAtLevel=1",
      "-XX:+UseSerialGC",
      `-Dquarkus.http.port=${http}`,
      "-Dquarkus.http.host=127.0.0.1",
      `-Dquarkus.management.port=${management}`,
      "-Dquarkus.management.host=127.0.0.1",
      "-Dquarkus.oidc.auth-server-url=",
      `-Dquarkus.oidc.public-key=${spki}`,
      ...(options.systemProperties ?? []),
      "-jar",
      jar,
    ],
    {
      cwd: options.dir,
      env: {
        ...process.env,
        // The Secrets' keys (deploy/README.md, "Secrets"), as the pod gets them.
        NESSIE_OIDC_ISSUER: ISSUER,
        NESSIE_OIDC_CLIENT_ID: "nessie",
        NESSIE_WRITER_PRINCIPAL: NESSIE_WRITER,
        NESSIE_READER_PRINCIPAL: NESSIE_READER,
        NESSIE_DB_USER: "nessie",
        NESSIE_DB_PASSWORD: "unused",
        NESSIE_CACHE_INVALIDATION_TOKEN: "unused-with-one-replica",
        SIMGATE_WAREHOUSE: "s3://simgate-warehouse/",
        S3_ENDPOINT: "http://127.0.0.1:9/",
        S3_REGION: "us-east-1",
        S3_PATH_STYLE: "true",
        S3_ACCESS_KEY: "unused",
        S3_SECRET_KEY: "unused",
        ...options.env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let logs = "";
  child.stdout?.on("data", (d: Buffer) => (logs += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (logs += d.toString()));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
  };
  const api = `http://127.0.0.1:${http}/api/v2`;
  const deadlineMs = options.startupDeadlineMs ?? 240_000;
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`Nessie exited (${child.exitCode}):\n${logs.slice(-3000)}`);
    const answered = await fetch(`${api}/config`, { headers: { authorization: `Bearer ${nessieToken(NESSIE_READER)}` } }).then(
      (r) => r.status,
      () => 0,
    );
    if (answered !== 0) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`Nessie did not answer within ${deadlineMs} ms:\n${logs.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return { api, logs: () => logs, stop };
}

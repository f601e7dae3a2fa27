// The Nessie backup and its restore (issue 11, H4), for real: a PostgreSQL server (Debian's package), the
// real Nessie server on the deployed application.properties with its JDBC2 version store on that
// database (test/support/nessie-server.ts), and the local stack's S3. The script is the one the CronJob
// nessie-backup and the restore Job run (deploy/k8s/base/nessie/nessie-backup.sh, mounted from the
// ConfigMap nessie-backup-scripts), run here with the same arguments and the same environment variables:
// dump and upload, then download and restore, after the repository has moved on and after its database
// is gone. Nessie must then serve every branch, tag, commit and piece of content exactly as backed up.
// PostgreSQL listens on POSTGRES_PORT when set, else on a free port; S3 is the stack's (S3_ENDPOINT).
import { type SpawnSyncReturns, spawnSync } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { STACK } from "../support/gateway.js";
import { type DeployedNessie, NESSIE_WRITER, nessieToken, startDeployedNessie } from "../support/nessie-server.js";
import { postgresBinDir, startPostgres, type TestPostgres } from "../support/postgres.js";
import { s3Client } from "../support/stack.js";
import { isObject, type Json, type JsonObject, type Resource } from "./kustomize-lite.js";
import { renderWithKustomize } from "./render.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const SCRIPT = join(ROOT, "deploy/k8s/base/nessie/nessie-backup.sh");
const STARTUP_DEADLINE_MS = 240_000;
const DATABASE = "nessie";
const bucket = `simgate-backups-test-${randomUUID().slice(0, 8)}`;
const dir = mkdtempSync(join(tmpdir(), "simgate-nessie-backup-"));
const s3 = s3Client();

let pg: TestPostgres | undefined;
let nessie: DeployedNessie | undefined;

// ---- the environment the pods get (backup.yaml, templates/restore-job.yaml), pointed at this test ----

function podEnv(): Record<string, string> {
  if (pg === undefined) throw new Error("PostgreSQL not started");
  return {
    // The postgres image has its tools on PATH; here, the package's, of the server's own version.
    PATH: `${postgresBinDir()}:${process.env["PATH"] ?? ""}`,
    HOME: dir,
    // dump and restore: PG* from the Job's env (nessie-postgres Secret).
    ...pg.env,
    PGDATABASE: DATABASE,
    // upload and download: simgate-stack ConfigMap + simgate-s3-backup / simgate-s3-restore Secret.
    S3_ENDPOINT: STACK.s3Endpoint,
    S3_REGION: STACK.s3Region,
    S3_PATH_STYLE: "true",
    S3_BACKUP_BUCKET: bucket,
    S3_ACCESS_KEY: STACK.s3AccessKey,
    S3_SECRET_KEY: STACK.s3SecretKey,
  };
}

/** The script as a container runs it: `/bin/sh nessie-backup.sh COMMAND FILE`. */
function script(command: string, file: string, extraEnv: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync("/bin/sh", [SCRIPT, command, file], { encoding: "utf8", env: { ...podEnv(), ...extraEnv }, timeout: 120_000 });
}
function scriptOk(command: string, file: string, extraEnv: Record<string, string> = {}): string {
  const run = script(command, file, extraEnv);
  expect(run.status, `nessie-backup.sh ${command}: ${run.stderr}${run.stdout}`).toBe(0);
  return run.stdout;
}

// ---- Nessie's REST API v2 ----

interface Ref {
  type: "BRANCH" | "TAG";
  name: string;
  hash: string;
}

async function call(method: string, path: string, body?: unknown): Promise<JsonObject> {
  if (nessie === undefined) throw new Error("Nessie not running");
  const res = await fetch(`${nessie.api}${path}`, {
    method,
    headers: { authorization: `Bearer ${nessieToken(NESSIE_WRITER)}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text === "" ? {} : (JSON.parse(text) as JsonObject);
}

async function ref(name: string): Promise<Ref> {
  return (await call("GET", `/trees/${name}`))["reference"] as unknown as Ref;
}
async function createRef(name: string, type: Ref["type"], from: Ref): Promise<Ref> {
  return (await call("POST", `/trees?name=${name}&type=${type}`, from))["reference"] as unknown as Ref;
}
const table = (location: string, snapshotId: number): JsonObject => ({ type: "ICEBERG_TABLE", metadataLocation: location, snapshotId, schemaId: 0, specId: 0, sortOrderId: 0 });

/** One commit on `branch` putting (or, with `content` undefined, deleting) keys; returns the new head. */
async function commit(branch: string, message: string, changes: [string[], JsonObject | undefined][]): Promise<Ref> {
  const head = await ref(branch);
  const operations = await Promise.all(
    changes.map(async ([elements, content]) => {
      if (content === undefined) return { type: "DELETE", key: { elements } };
      // Updating a table names the content id it had.
      const existing = await call("GET", `/trees/${branch}@${head.hash}/contents/${elements.join(".")}`).catch(() => undefined);
      const id = existing === undefined ? undefined : obj(existing["content"])["id"];
      return { type: "PUT", key: { elements }, content: id === undefined ? content : { ...content, id } };
    }),
  );
  const res = await call("POST", `/trees/${branch}@${head.hash}/history/commit`, { commitMeta: { message, author: "nessie-backup.test" }, operations });
  return res["targetBranch"] as unknown as Ref;
}

function obj(v: Json | undefined): JsonObject {
  return isObject(v) ? v : {};
}

/** The whole repository as Nessie serves it: every reference, its full log (with operations) and its contents. */
async function repository(): Promise<JsonObject> {
  const refs = ((await call("GET", "/trees"))["references"] as unknown as Ref[]).sort((a, b) => a.name.localeCompare(b.name));
  const out: JsonObject = {};
  for (const r of refs) {
    const at = `${r.name}@${r.hash}`;
    const log = (await call("GET", `/trees/${at}/history?fetch=ALL&max-records=1000`))["logEntries"] as Json;
    const entries = ((await call("GET", `/trees/${at}/entries?content=true&max-records=1000`))["entries"] as JsonObject[]).sort((a, b) => JSON.stringify(a["name"]).localeCompare(JSON.stringify(b["name"])));
    out[`${r.type} ${r.name}`] = { hash: r.hash, log, entries } as unknown as Json;
  }
  return out;
}

/** A digest of every row of every table in the database's public schema (what Nessie stores). */
function databaseDigest(): string {
  if (pg === undefined) throw new Error("PostgreSQL not started");
  const tables = pg.psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", DATABASE).split("\n").filter((t) => t !== "");
  expect(tables.length).toBeGreaterThan(0);
  return tables.map((t) => `${t}:${pg?.psql(`SELECT count(*) || ':' || md5(coalesce(string_agg(r::text, E'\\n' ORDER BY r::text), '')) FROM public."${t}" r`, DATABASE)}`).join(" ");
}

async function startNessie(): Promise<void> {
  if (pg === undefined) throw new Error("PostgreSQL not started");
  nessie = await startDeployedNessie({
    dir: join(dir, "nessie"),
    // The deployed store (JDBC2, datasource `postgresql`), at this server instead of nessie-postgres.simgate.svc.
    systemProperties: [`-Dquarkus.datasource.postgresql.jdbc.url=jdbc:postgresql://127.0.0.1:${pg.port}/${DATABASE}`],
    env: { NESSIE_DB_USER: pg.env["PGUSER"] as string, NESSIE_DB_PASSWORD: pg.env["PGPASSWORD"] as string },
    startupDeadlineMs: STARTUP_DEADLINE_MS,
  });
}
async function stopNessie(): Promise<void> {
  await nessie?.stop();
  nessie = undefined;
}

beforeAll(async () => {
  pg = await startPostgres();
  pg.psql(`CREATE DATABASE ${DATABASE}`);
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await startNessie();
}, STARTUP_DEADLINE_MS + 60_000);

afterAll(async () => {
  await stopNessie();
  pg?.stop();
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket })).catch(() => undefined);
  for (const o of listed?.Contents ?? []) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key }));
  await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

describe("the Nessie backup (pg_dump to S3) and its restore, on a real PostgreSQL, Nessie and S3", () => {
  let backedUp: JsonObject = {};
  let digestAtBackup = "";
  let key = "";

  test("the deployed configuration keeps the repository in PostgreSQL: branches, tags and commits land in its tables", async () => {
    expect(nessie?.logs()).toMatch(/JDBC2|PostgreSQL/i);
    const main = await ref("main");
    await commit("main", "create namespace and table", [
      [["production"], { type: "NAMESPACE", elements: ["production"] }],
      [["production", "parking_entries"], table("s3://simgate-warehouse/production/parking_entries/metadata/00000.json", 1)],
    ]);
    await commit("main", "second table", [[["production", "parking_exits"], table("s3://simgate-warehouse/production/parking_exits/metadata/00000.json", 2)]]);
    await createRef("wap-parking-entries-1", "TAG", await ref("main"));
    const wap = await createRef("wap-run-2", "BRANCH", await ref("main"));
    expect(wap.hash).not.toBe(main.hash);
    await commit("wap-run-2", "staging on the branch", [[["production", "parking_entries"], table("s3://simgate-warehouse/production/parking_entries/metadata/00001.json", 3)]]);
    await commit("main", "a later publish", [[["production", "parking_exits"], table("s3://simgate-warehouse/production/parking_exits/metadata/00001.json", 4)]]);
    await createRef("wap-parking-exits-2", "TAG", await ref("main"));
    backedUp = await repository();
    expect(Object.keys(backedUp).sort()).toEqual(["BRANCH main", "BRANCH wap-run-2", "TAG wap-parking-entries-1", "TAG wap-parking-exits-2"]);
    expect((obj(backedUp["BRANCH main"])["log"] as Json[]).length).toBe(3);
    // The comparison sees contents and the commits' operations, not only hashes.
    const text = JSON.stringify(backedUp);
    for (const location of ["parking_entries/metadata/00001.json", "parking_exits/metadata/00001.json"]) expect(text).toContain(location);
    expect(text).toContain('"operations"');
    expect(text).toContain("a later publish");
  });

  test("backup: the CronJob's two steps (dump, then upload) put one checked dump in the backup bucket", async () => {
    const file = join(dir, "backup", "nessie.dump");
    spawnSync("mkdir", ["-p", dirname(file)]);
    expect(scriptOk("dump", file)).toMatch(/dumped nessie .*tables: objs2 refs2\)/);
    digestAtBackup = databaseDigest(); // nothing writes between the dump and this
    const out = scriptOk("upload", file);
    key = /wrote s3:\/\/[^/]+\/(nessie\/\d{8}T\d{6}Z\.dump)/.exec(out)?.[1] ?? "";
    expect(key, out).not.toBe("");
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    const sha256 = createHash("sha256").update(readFileSync(file)).digest("hex");
    expect(head.Metadata?.["sha256"]).toBe(sha256);
    expect(head.ContentLength).toBe(readFileSync(file).length);
    const latest = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: "nessie/latest.txt" }));
    expect((await latest.Body?.transformToString())?.trim()).toBe(key);
  });

  test("restore refuses while Nessie is connected, and leaves the database as it was", async () => {
    // The repository moves on after the backup: a new commit on main, a tag and a branch dropped, a new branch.
    await commit("main", "after the backup", [[["production", "parking_exits"], undefined]]);
    const tag = await ref("wap-parking-entries-1");
    await call("DELETE", `/trees/wap-parking-entries-1@${tag.hash}`);
    await createRef("after-backup", "BRANCH", await ref("main"));
    const moved = await repository();
    expect(moved).not.toEqual(backedUp);
    // Nessie holds a session (its connection pool) right now: what the check must see.
    expect(Number(pg?.psql(`SELECT count(*) FROM pg_stat_activity WHERE datname = '${DATABASE}'`))).toBeGreaterThan(0);
    const file = join(dir, "restore-refused", "nessie.dump");
    spawnSync("mkdir", ["-p", dirname(file)]);
    scriptOk("download", file);
    const refused = script("restore", file);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/other session\(s\) are connected to nessie: scale Nessie to 0/);
    expect(await repository()).toEqual(moved);
  });

  test("restore over the database that moved on (Nessie stopped): the tables are exactly those of the backup", async () => {
    await stopNessie();
    expect(databaseDigest()).not.toBe(digestAtBackup);
    const file = join(dir, "restore-over", "nessie.dump");
    spawnSync("mkdir", ["-p", dirname(file)]);
    // BACKUP_KEY unset: the newest backup, through nessie/latest.txt (the restore Job's default).
    expect(scriptOk("download", file)).toContain(`downloaded s3://${bucket}/${key}`);
    expect(scriptOk("restore", file)).toContain("restored nessie");
    expect(databaseDigest()).toBe(digestAtBackup);
  });

  test("restore after the database is lost: Nessie serves every branch, tag, commit and content exactly as backed up", async () => {
    pg?.psql(`DROP DATABASE ${DATABASE}`);
    const file = join(dir, "restore-lost", "nessie.dump");
    spawnSync("mkdir", ["-p", dirname(file)]);
    scriptOk("download", file, { BACKUP_KEY: key });
    expect(scriptOk("restore", file)).toMatch(/does not exist; creating it[\s\S]*restored nessie/);
    expect(databaseDigest()).toBe(digestAtBackup);
    await startNessie();
    expect(await repository()).toEqual(backedUp);
    // And it works on from there: a commit on the restored main.
    const before = await ref("main");
    const after = await commit("main", "after the restore", [[["production", "parking_exits"], undefined]]);
    expect(after.hash).not.toBe(before.hash);
  }, STARTUP_DEADLINE_MS + 60_000); // it starts Nessie again (minutes on a loaded 2-core machine)

  test("a backup that does not match its checksum, or is not a dump of Nessie, is refused before the database is touched", async () => {
    const digest = databaseDigest();
    const tampered = "nessie/20000101T000000Z.dump";
    const original = readFileSync(join(dir, "backup", "nessie.dump"));
    const flipped = Buffer.from(original);
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] ?? 0) ^ 0xff;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: tampered, Body: flipped, Metadata: { sha256: createHash("sha256").update(original).digest("hex") } }));
    const file = join(dir, "tampered.dump");
    const download = script("download", file, { BACKUP_KEY: tampered });
    expect(download.status).not.toBe(0);
    expect(download.stderr).toMatch(/sha256 [0-9a-f]{64}, but it was stored with [0-9a-f]{64}/);
    writeFileSync(join(dir, "not-a-dump"), "not a dump\n");
    const restore = script("restore", join(dir, "not-a-dump"));
    expect(restore.status).not.toBe(0);
    expect(restore.stderr).toMatch(/is not a pg_dump archive/);
    expect(databaseDigest()).toBe(digest);
  });
});

describe("what the cluster runs is this script", () => {
  const get = (items: Resource[], kind: string, name: string): Resource => {
    const hit = items.find((r) => r.kind === kind && r.metadata["name"] === name);
    if (hit === undefined) throw new Error(`${kind} ${name} not rendered`);
    return hit;
  };
  test("the CronJob (dump, upload) and the restore Job (download, restore) run nessie-backup.sh from the ConfigMap built from this file", () => {
    const prod = renderWithKustomize(join(ROOT, "deploy/k8s/overlays/prod/nessie")).map(({ resource }) => resource);
    const restore = get(renderWithKustomize(join(ROOT, "deploy/k8s/base/nessie/templates")).map(({ resource }) => resource), "Job", "nessie-restore");
    const scripts = get(prod, "ConfigMap", "nessie-backup-scripts");
    expect(obj(scripts["data"] as Json)["nessie-backup.sh"]).toBe(readFileSync(SCRIPT, "utf8"));
    const steps = (r: Resource): string[] => {
      const spec = obj(r["spec"] as Json);
      const pod = r.kind === "CronJob" ? obj(obj(obj(obj(spec["jobTemplate"])["spec"])["template"])["spec"]) : obj(obj(spec["template"])["spec"]);
      const mountOf = (c: JsonObject): string => String((c["volumeMounts"] as JsonObject[]).find((m) => m["name"] === "scripts")?.["mountPath"]);
      expect((pod["volumes"] as JsonObject[]).find((v) => v["name"] === "scripts")?.["configMap"]).toEqual({ name: "nessie-backup-scripts" });
      return [...((pod["initContainers"] as JsonObject[]) ?? []), ...(pod["containers"] as JsonObject[])].map((c) => {
        expect(c["command"]).toEqual(["/bin/sh", `${mountOf(c)}/nessie-backup.sh`]);
        return `${String(c["image"]).split(":")[0]} ${(c["args"] as string[]).join(" ")}`;
      });
    };
    expect(steps(get(prod, "CronJob", "nessie-backup"))).toEqual(["postgres dump /backup/nessie.dump", "curlimages/curl upload /backup/nessie.dump"]);
    expect(steps(restore)).toEqual(["curlimages/curl download /backup/nessie.dump", "postgres restore /backup/nessie.dump"]);
  });
});

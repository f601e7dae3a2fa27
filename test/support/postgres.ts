// A throw-away PostgreSQL server for a test: Debian's postgresql package (scripts/setup installs it),
// initdb into a temporary directory and pg_ctl on a loopback port (POSTGRES_PORT, else a free one), with
// password (SCRAM) authentication over TCP as in the cluster's nessie-postgres. PostgreSQL refuses to
// run as root: under root the server runs as the `postgres` user the package creates. fsync is off
// (nothing here tests durability across a crash of the machine).
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./nessie-server.js";

export interface TestPostgres {
  /** The libpq variables of a client: PGHOST, PGPORT, PGUSER, PGPASSWORD (PGDATABASE is the caller's). */
  readonly env: Record<string, string>;
  readonly port: number;
  /** psql -At on `database`; the output, trimmed. Throws with psql's message on error. */
  psql(sql: string, database?: string): string;
  stop(): void;
}

/** The directory of initdb and pg_ctl: pg_config's, else the newest /usr/lib/postgresql/<major>/bin. */
export function postgresBinDir(): string {
  const config = spawnSync("pg_config", ["--bindir"], { encoding: "utf8" });
  const fromConfig = config.status === 0 ? config.stdout.trim() : "";
  if (fromConfig !== "" && existsSync(join(fromConfig, "initdb"))) return fromConfig;
  const base = "/usr/lib/postgresql";
  const majors = existsSync(base) ? readdirSync(base).filter((d) => /^\d+$/.test(d)).sort((a, b) => Number(b) - Number(a)) : [];
  for (const m of majors) if (existsSync(join(base, m, "bin", "initdb"))) return join(base, m, "bin");
  throw new Error("PostgreSQL's initdb not found (pg_config --bindir, /usr/lib/postgresql/*/bin): run bash scripts/setup, which installs Debian's postgresql package");
}

function check(run: SpawnSyncReturns<string>, what: string): string {
  if (run.error !== undefined) throw new Error(`${what}: ${run.error.message}`);
  if (run.status !== 0) throw new Error(`${what} failed (${String(run.status)}): ${run.stderr}${run.stdout}`);
  return run.stdout;
}

export async function startPostgres(options: { user?: string; password?: string } = {}): Promise<TestPostgres> {
  const bin = postgresBinDir();
  const user = options.user ?? "nessie";
  const password = options.password ?? "test-only-password";
  const port = Number(process.env["POSTGRES_PORT"] ?? (await freePort()));
  const dir = mkdtempSync(join(tmpdir(), "simgate-postgres-"));
  const asRoot = process.getuid?.() === 0;
  // Under root, everything the server touches belongs to `postgres`, and its commands run as that user.
  const owner = asRoot ? Number(check(spawnSync("id", ["-u", "postgres"], { encoding: "utf8" }), "id -u postgres (the postgresql package's user)").trim()) : undefined;
  const run = (cmd: string, args: string[]): string =>
    check(asRoot ? spawnSync("runuser", ["-u", "postgres", "--", join(bin, cmd), ...args], { encoding: "utf8", cwd: dir }) : spawnSync(join(bin, cmd), args, { encoding: "utf8", cwd: dir }), cmd);
  const pwfile = join(dir, "pwfile");
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (owner !== undefined) {
    chownSync(dir, owner, -1);
    chownSync(pwfile, owner, -1);
  }
  const data = join(dir, "data");
  run("initdb", ["--pgdata", data, "--username", user, `--pwfile=${pwfile}`, "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"]);
  run("pg_ctl", ["--pgdata", data, "--log", join(dir, "server.log"), "--wait", "--timeout=120", "-o", `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -F`, "start"]);
  const env = { PGHOST: "127.0.0.1", PGPORT: String(port), PGUSER: user, PGPASSWORD: password };
  let stopped = false;
  return {
    env,
    port,
    psql(sql, database = "postgres") {
      const out = spawnSync(join(bin, "psql"), ["-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql], { encoding: "utf8", env: { ...process.env, ...env } });
      return check(out, `psql ${sql.slice(0, 60)}`).trim();
    },
    stop() {
      if (stopped) return;
      stopped = true;
      try {
        run("pg_ctl", ["--pgdata", data, "--mode=fast", "--wait", "stop"]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

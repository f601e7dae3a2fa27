// A private Kafka + S3Proxy started with the project's own stack script on free ports and a private
// state directory, for tests that stop and restart a service (the shared stack is never touched).
import { execFile } from "node:child_process";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort, REPO_ROOT } from "./gateway.js";

const run = promisify(execFile);
const STACK_SCRIPT = join(REPO_ROOT, "deploy/local/stack");

export interface PrivateStack {
  env: Record<string, string>;
  kafkaBootstrap: string;
  s3Endpoint: string;
  up(...services: Array<"kafka" | "s3">): Promise<void>;
  down(...services: Array<"kafka" | "s3">): Promise<void>;
  /** Stops everything it started and removes its state directory. */
  destroy(): Promise<void>;
}

export async function startPrivateStack(services: Array<"kafka" | "s3"> = ["kafka", "s3"]): Promise<PrivateStack> {
  const state = join(tmpdir(), `gw-outage-${process.pid}-${Date.now()}`);
  const env: Record<string, string> = {
    SIMGATE_STATE: state,
    KAFKA_PORT: String(await freePort()),
    KAFKA_CONTROLLER_PORT: String(await freePort()),
    S3_PORT: String(await freePort()),
    NESSIE_PORT: String(await freePort()),
    NESSIE_MANAGEMENT_PORT: String(await freePort()),
  };
  const stackEnv = { ...process.env, ...env };
  const call = async (verb: "up" | "down", list: string[]): Promise<void> => {
    try {
      await run(STACK_SCRIPT, [verb, ...list], { env: stackEnv, timeout: 180_000 });
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string; message: string };
      throw new Error(`stack ${verb} ${list.join(" ")} failed: ${e.message}\n${e.stdout ?? ""}\n${e.stderr ?? ""}`);
    }
  };
  await call("up", services);
  return {
    env,
    kafkaBootstrap: `127.0.0.1:${env["KAFKA_PORT"]}`,
    s3Endpoint: `http://127.0.0.1:${env["S3_PORT"]}`,
    up: (...s) => call("up", s),
    down: (...s) => call("down", s),
    destroy: async () => {
      await call("down", ["kafka", "s3"]).catch(() => undefined);
      rmSync(state, { recursive: true, force: true });
    },
  };
}

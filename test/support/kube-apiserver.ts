// A real Kubernetes API server for the tests, on loopback: etcd and kube-apiserver (RBAC, admission with
// ValidatingAdmissionPolicy and ResourceQuota, service-account tokens). No controllers, kubelet or
// scheduler: pods stay Pending, and what a controller would write (an operator's status, a quota's
// usage) the tests write themselves. The
// binaries come from deploy/local/k8s-tools (bash scripts/setup); state lives in a temporary directory
// removed by stop(). Ports: KUBE_APISERVER_PORT, ETCD_PORT and ETCD_PEER_PORT when set, else free ones.
//
//   const cluster = await startKubeCluster();
//   cluster.kubectl(["get", "ns"]);                     // as an administrator (system:masters)
//   const token = cluster.serviceAccountToken("simgate", "simgate-gateway");
//   await cluster.stop();
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kubectlPath, kubeTool } from "./kube-tools.js";
import { freePort } from "./ports.js";

export interface KubeCluster {
  /** https://127.0.0.1:<port> */
  readonly server: string;
  /** PEM bundle that verifies the API server's serving certificate. */
  readonly caFile: string;
  /** An administrator's kubeconfig (static token, group system:masters). */
  readonly kubeconfig: string;
  readonly dir: string;
  /** Seconds from spawning etcd to the API server's /readyz answering ok. */
  readonly startSeconds: number;
  /** Runs kubectl against this cluster; throws with its output when it exits non-zero (unless allowFailure). */
  kubectl(args: readonly string[], options?: { input?: string; allowFailure?: boolean; timeoutMs?: number }): SpawnSyncReturns<string>;
  /** A bound token for a service account (TokenRequest API), written to a file; returns the file. */
  serviceAccountTokenFile(namespace: string, name: string): string;
  stop(): Promise<void>;
}

async function port(name: string): Promise<number> {
  const fromEnv = process.env[name];
  return fromEnv ? Number(fromEnv) : freePort();
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function tail(file: string, lines = 30): string {
  return existsSync(file) ? readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n") : "(no log)";
}

function getReadyz(server: string, token: string, ca: Buffer | undefined): Promise<number> {
  return new Promise((resolve) => {
    const req = request(`${server}/readyz`, { headers: { authorization: `Bearer ${token}` }, ...(ca ? { ca } : { rejectUnauthorized: false }), timeout: 2000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(0));
    req.end();
  });
}

async function stopProcess(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (exited(child)) return;
  const done = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await done;
  clearTimeout(timer);
}

export async function startKubeCluster(options: { readyTimeoutMs?: number } = {}): Promise<KubeCluster> {
  const etcdBin = kubeTool("etcd");
  const apiserverBin = kubeTool("kube-apiserver");
  const kubectlBin = kubectlPath();
  const dir = mkdtempSync(join(tmpdir(), "simgate-kube-"));
  const [apiPort, etcdPort, etcdPeerPort] = [await port("KUBE_APISERVER_PORT"), await port("ETCD_PORT"), await port("ETCD_PEER_PORT")];
  const started = performance.now();
  const children: ChildProcess[] = [];
  const spawnLogged = (bin: string, args: string[], log: string): ChildProcess => {
    const fd = openSync(join(dir, log), "a");
    const child = spawn(bin, args, { stdio: ["ignore", fd, fd] });
    closeSync(fd);
    children.push(child);
    return child;
  };
  const stopAll = async (): Promise<void> => {
    for (const child of [...children].reverse()) await stopProcess(child);
  };

  try {
    // etcd: one member, loopback only, no fsync (test data).
    const etcd = spawnLogged(
      etcdBin,
      [
        "--name=simgate",
        `--data-dir=${join(dir, "etcd")}`,
        `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
        `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
        `--initial-cluster=simgate=http://127.0.0.1:${etcdPeerPort}`,
        "--unsafe-no-fsync",
        "--log-level=warn",
      ],
      "etcd.log",
    );

    // Credentials: a static administrator token, and the key pair that signs service-account tokens.
    const adminToken = randomBytes(24).toString("hex");
    writeFileSync(join(dir, "tokens.csv"), `${adminToken},simgate-admin,simgate-admin,"system:masters"\n`, { mode: 0o600 });
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    writeFileSync(join(dir, "sa.key"), privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
    writeFileSync(join(dir, "sa.pub"), publicKey.export({ type: "spki", format: "pem" }));
    const certDir = join(dir, "certs");
    mkdirSync(certDir);

    const apiserver = spawnLogged(
      apiserverBin,
      [
        `--etcd-servers=http://127.0.0.1:${etcdPort}`,
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        `--secure-port=${apiPort}`,
        `--cert-dir=${certDir}`,
        `--token-auth-file=${join(dir, "tokens.csv")}`,
        "--authorization-mode=RBAC",
        "--service-account-issuer=https://kubernetes.default.svc",
        `--service-account-key-file=${join(dir, "sa.pub")}`,
        `--service-account-signing-key-file=${join(dir, "sa.key")}`,
        "--service-cluster-ip-range=10.96.0.0/16",
        "--anonymous-auth=false",
        "--profiling=false",
        "--v=1",
      ],
      "kube-apiserver.log",
    );

    const server = `https://127.0.0.1:${apiPort}`;
    const caFile = join(certDir, "apiserver.crt");
    const deadline = Date.now() + (options.readyTimeoutMs ?? 90_000);
    for (;;) {
      if (exited(etcd)) throw new Error(`etcd exited (${etcd.exitCode ?? etcd.signalCode}):\n${tail(join(dir, "etcd.log"))}`);
      if (exited(apiserver)) throw new Error(`kube-apiserver exited (${apiserver.exitCode ?? apiserver.signalCode}):\n${tail(join(dir, "kube-apiserver.log"))}`);
      const ca = existsSync(caFile) ? readFileSync(caFile) : undefined;
      if (ca && (await getReadyz(server, adminToken, ca)) === 200) break;
      if (Date.now() > deadline) throw new Error(`kube-apiserver not ready at ${server} within the deadline:\n${tail(join(dir, "kube-apiserver.log"))}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const startSeconds = (performance.now() - started) / 1000;

    const kubeconfig = join(dir, "kubeconfig");
    writeFileSync(
      kubeconfig,
      [
        "apiVersion: v1",
        "kind: Config",
        "clusters: [{ name: simgate, cluster: { server: '" + server + "', certificate-authority: '" + caFile + "' } }]",
        "users: [{ name: admin, user: { token: '" + adminToken + "' } }]",
        "contexts: [{ name: simgate, context: { cluster: simgate, user: admin } }]",
        "current-context: simgate",
        "",
      ].join("\n"),
      { mode: 0o600 },
    );

    const kubectl: KubeCluster["kubectl"] = (args, opts = {}) => {
      const run = spawnSync(kubectlBin, [`--kubeconfig=${kubeconfig}`, ...args], {
        encoding: "utf8",
        input: opts.input,
        timeout: opts.timeoutMs ?? 120_000,
        maxBuffer: 64 * 1024 * 1024,
      });
      if (run.error) throw run.error;
      if (run.status !== 0 && !opts.allowFailure) throw new Error(`kubectl ${args.join(" ")} exited ${run.status}:\n${run.stderr}${run.stdout}`);
      return run;
    };

    return {
      server,
      caFile,
      kubeconfig,
      dir,
      startSeconds,
      kubectl,
      serviceAccountTokenFile(namespace, name) {
        const token = kubectl(["create", "token", name, "-n", namespace, "--duration=1h"]).stdout.trim();
        const file = join(dir, `token-${namespace}-${name}`);
        writeFileSync(file, token, { mode: 0o600 });
        return file;
      },
      async stop() {
        await stopAll();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

// Images and Dockerfiles (issue 11): every image is named once (deploy/k8s/components/images) and pinned;
// the Dockerfiles build from a context without .venv/node_modules, on a supported Node LTS, verify every
// downloaded jar against Maven Central's checksum, and run as a numeric non-root user.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { load } from "js-yaml";
import { afterAll, describe, expect, test } from "vitest";
import { isObject, type Json, type JsonObject, type RenderedResource } from "./kustomize-lite.js";
import { renderWithKustomize } from "./render.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const K8S = join(ROOT, "deploy", "k8s");
const IMAGES_DIR = join(K8S, "images");
const render = (rel: string): RenderedResource[] => renderWithKustomize(join(ROOT, rel));
const dockerfile = (name: string): string => readFileSync(join(IMAGES_DIR, name, "Dockerfile"), "utf8");
const tmpDirs: string[] = [];
afterAll(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

interface ImageEntry {
  name: string;
  newName: string;
  newTag?: string;
  digest?: string;
}
const component = load(readFileSync(join(K8S, "components", "images", "kustomization.yaml"), "utf8")) as { images: ImageEntry[] };

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? yamlFiles(p) : /\.ya?ml$/.test(e) ? [p] : [];
  });
}

/** Every image reference in a rendered object: containers, Spark applications, SIMGATE_JOBS_K8S_IMAGE. */
function imagesIn(value: Json, path = ""): { path: string; image: string }[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => imagesIn(v, `${path}/${i}`));
  if (!isObject(value)) return [];
  const out: { path: string; image: string }[] = [];
  for (const [k, v] of Object.entries(value)) {
    if (k === "image" && typeof v === "string") out.push({ path: `${path}/image`, image: v });
    else if (k === "env" && Array.isArray(v)) {
      for (const e of v.filter(isObject)) if (e["name"] === "SIMGATE_JOBS_K8S_IMAGE") out.push({ path: `${path}/env/SIMGATE_JOBS_K8S_IMAGE`, image: String(e["value"]) });
    } else out.push(...imagesIn(v as Json, `${path}/${k}`));
  }
  return out;
}

/**
 * How each project numbers its releases, for the images whose exact release is not MAJOR.MINOR.PATCH:
 * PostgreSQL has two numbers since 10 (17.6), Trino one (476). A tag with fewer numbers than an exact
 * release ("17", "7.4", "22-slim") floats to whatever is pushed next under it, as `latest` does.
 */
const RELEASE_NUMBERS: Record<string, number> = { postgres: 2, trino: 1 };
const DISTRO_SUFFIX = /^(bookworm|trixie|bullseye|alpine\d+\.\d+|ubuntu|scala\d+\.\d+|java\d+|python3|slim|jammy|noble)$/;

/** Why `repository:tag[@digest]` is not pinned to one exact release, or undefined when it is. */
function unpinned(repository: string, tag: string | undefined, digest?: string): string | undefined {
  if (digest !== undefined && !/^sha256:[0-9a-f]{64}$/.test(digest)) return `digest ${digest} is not sha256:<64 hex>`;
  if (tag === undefined) return digest === undefined ? "no tag and no digest" : undefined;
  const [version = "", ...suffix] = tag.split("-");
  const base = repository.split("/").at(-1) as string;
  const numbers = RELEASE_NUMBERS[base] ?? 3;
  if (!new RegExp(`^\\d+${"\\.\\d+".repeat(numbers - 1)}$`).test(version)) return `tag ${tag} is not an exact release (${numbers === 1 ? "N" : numbers === 2 ? "MAJOR.MINOR" : "MAJOR.MINOR.PATCH"})`;
  const unknown = suffix.filter((s) => !DISTRO_SUFFIX.test(s));
  if (unknown.length > 0) return `tag ${tag}: unknown suffix ${unknown.join("-")}`;
  return undefined;
}

/** The images the Dockerfiles build on: FROM lines and ARG *_IMAGE defaults. */
function baseImages(): { file: string; image: string }[] {
  return readdirSync(IMAGES_DIR).flatMap((name) =>
    [...dockerfile(name).matchAll(/^(?:FROM\s+(?!\$\{)(\S+)|ARG\s+[A-Z_]*IMAGE=(\S+))/gm)].map((m) => ({ file: `deploy/k8s/images/${name}/Dockerfile`, image: (m[1] ?? m[2]) as string })),
  );
}

describe("images named once, pinned", () => {
  test("the pin check refuses every floating reference: latest, a major or minor line, a bare distro tag, no tag", () => {
    for (const [repository, tag] of [
      ["postgres", "latest"],
      ["postgres", "17"],
      ["postgres", "17-bookworm"],
      ["postgres", "bookworm"],
      ["redis", "7.4-bookworm"],
      ["redis", "7"],
      ["ghcr.io/projectnessie/nessie", "0.99"],
      ["curlimages/curl", "8"],
      ["trinodb/trino", "latest"],
      ["node", "22-bookworm-slim"],
      ["registry.example.com/simgate/gateway", "main"],
      ["redis", undefined],
    ] as const) {
      expect(unpinned(repository, tag), `${repository}:${String(tag)}`).toBeDefined();
    }
    expect(unpinned("redis", "7.4.5-bookworm", "sha256:abc")).toMatch(/digest/);
    for (const [repository, tag] of [["postgres", "17.6-bookworm"], ["trinodb/trino", "476"], ["node", "22.23.3-bookworm-slim"], ["apache/spark", "3.5.7-scala2.12-java17-python3-ubuntu"]] as const) {
      expect(unpinned(repository, tag), `${repository}:${tag}`).toBeUndefined();
    }
    expect(unpinned("redis", undefined, `sha256:${"a".repeat(64)}`)).toBeUndefined();
  });

  test("the images Component pins every image to an exact release (and a digest where one is recorded)", () => {
    expect(component.images.length).toBeGreaterThanOrEqual(8);
    const problems: string[] = [];
    for (const i of component.images) {
      expect(i.newName, i.name).toMatch(/^[a-z0-9./-]+$/);
      const why = unpinned(i.newName, i.newTag, i.digest);
      if (why !== undefined) problems.push(`${i.name} (${i.newName}): ${why}`);
    }
    expect(problems).toEqual([]);
    expect(new Set(component.images.map((i) => i.name)).size).toBe(component.images.length);
  });

  test("the Dockerfiles' base images and the operators' Helm charts are exact releases too", () => {
    const bases = baseImages();
    expect(bases.map((b) => b.image.split(":")[0]).sort()).toEqual(["apache/spark", "apache/superset", "node"]);
    const problems = bases.map((b) => ({ ...b, why: unpinned(b.image.split(":")[0] as string, b.image.split(":")[1]) })).filter((b) => b.why !== undefined);
    expect(problems).toEqual([]);
    for (const app of ["strimzi", "spark-operator"]) {
      const source = (load(readFileSync(join(ROOT, "deploy/argocd/apps", `${app}.yaml`), "utf8")) as { spec: { source: { chart: string; targetRevision: string } } }).spec.source;
      expect(source.targetRevision, `${app}: chart ${source.chart}`).toMatch(/^\d+\.\d+\.\d+$/);
    }
  });

  test("no manifest names an image except by a logical name of the Component", () => {
    const logical = new Set(component.images.map((i) => i.name));
    const problems: string[] = [];
    for (const file of yamlFiles(K8S).filter((f) => !f.includes(`${join("components", "images")}`))) {
      const text = readFileSync(file, "utf8");
      for (const m of text.matchAll(/^\s*-?\s*image:\s*(\S+)/gm)) if (!logical.has(m[1] as string)) problems.push(`${relative(ROOT, file)}: image ${m[1]}`);
      for (const m of text.matchAll(/SIMGATE_JOBS_K8S_IMAGE[\s\S]{0,40}?value:\s*(\S+)/g)) if (!logical.has(m[1] as string)) problems.push(`${relative(ROOT, file)}: SIMGATE_JOBS_K8S_IMAGE ${m[1]}`);
      if (/registry\.example\.com|ghcr\.io|trinodb\/|curlimages\/|amazon\//.test(text)) problems.push(`${relative(ROOT, file)}: a registry name outside components/images`);
    }
    // gateway.json (its jobs section included) names no image either (the job driver's comes from SIMGATE_JOBS_K8S_IMAGE).
    expect(readFileSync(join(K8S, "base", "gateway", "gateway.json"), "utf8")).not.toMatch(/"image"\s*:|lakehouse-jobs/);
    expect(problems).toEqual([]);
  });

  test.each(["dev", "prod"])("overlays/%s: every rendered image reference is a pinned image of the Component", (env) => {
    const pinned = new Set(component.images.map((i) => `${i.newName}${i.newTag !== undefined ? `:${i.newTag}` : ""}${i.digest !== undefined ? `@${i.digest}` : ""}`));
    const items = [...render(`deploy/k8s/overlays/${env}`), ...render("deploy/k8s/base/spark-jobs/templates"), ...render("deploy/k8s/base/nessie/templates")];
    const refs = items.flatMap(({ resource }) => imagesIn(resource as unknown as Json).map((r) => ({ ...r, id: `${resource.kind}/${String(resource.metadata["name"])}` })));
    expect(refs.length).toBeGreaterThan(10);
    expect(refs.filter((r) => !pinned.has(r.image)).map((r) => `${r.id}${r.path}: ${r.image}`)).toEqual([]);
    // The gateway starts WAP runs with exactly the image the maintenance runs.
    const lakehouse = refs.filter((r) => r.image.includes("lakehouse-jobs")).map((r) => r.image);
    expect(new Set(lakehouse).size).toBe(1);
    expect(refs.some((r) => r.path.endsWith("SIMGATE_JOBS_K8S_IMAGE"))).toBe(true);
  });
});

describe("Dockerfiles", () => {
  test(".dockerignore keeps the virtualenv, node_modules, git and the stack's state out of the build context, and no COPY source", () => {
    const ignore = readFileSync(join(ROOT, ".dockerignore"), "utf8")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#"));
    for (const p of [".git", "**/.venv", "**/node_modules", ".simgate", "**/__pycache__"]) expect(ignore).toContain(p);
    for (const name of readdirSync(IMAGES_DIR)) {
      for (const m of dockerfile(name).matchAll(/^COPY (?!--from)(.+) \S+$/gm)) {
        for (const src of (m[1] as string).split(/\s+/)) {
          const top = src.split("/")[0] as string;
          expect(ignore, `${name}: COPY ${src}`).not.toContain(top);
          expect(existsSync(join(ROOT, src)), `${name}: COPY ${src} exists`).toBe(true);
        }
      }
    }
  });

  test("the gateway image runs on Node 22 LTS (pinned release), as a numeric non-root user", () => {
    const text = dockerfile("gateway");
    const node = /^ARG NODE_IMAGE=node:(\d+)\.(\d+)\.(\d+)-bookworm-slim$/m.exec(text);
    expect(node?.[1]).toBe("22");
    expect(text.match(/^FROM \$\{NODE_IMAGE\}/gm)).toHaveLength(2);
  });

  test.each(["gateway", "lakehouse-jobs", "superset"])("%s: the last USER is numeric and not root; the manifests run it as that user", (name) => {
    const users = [...dockerfile(name).matchAll(/^USER (\S+)$/gm)].map((m) => m[1] as string);
    const last = users.at(-1) as string;
    expect(last).toMatch(/^[1-9]\d*(:\d+)?$/);
    const uid = Number(last.split(":")[0]);
    const items = render("deploy/k8s/overlays/prod").map(({ resource }) => resource);
    const pods = items.flatMap((r) => {
      const spec = isObject(r["spec"]) ? (r["spec"] as JsonObject) : {};
      const template = r.kind === "CronJob" ? (spec["jobTemplate"] as JsonObject)?.["spec"] : spec;
      const podSpec = isObject(template) && isObject(template["template"]) ? (template["template"]["spec"] as JsonObject) : undefined;
      return podSpec === undefined ? [] : [podSpec];
    });
    const using = pods.filter((p) => [...((p["initContainers"] as JsonObject[] | undefined) ?? []), ...(p["containers"] as JsonObject[])].some((c) => String(c["image"]).includes(`simgate/${name}:`)));
    expect(using.length).toBeGreaterThan(0);
    for (const p of using) expect((p["securityContext"] as JsonObject)["runAsUser"]).toBe(uid);
  });

  test("lakehouse-jobs: every jar is verified against the SHA-1 Maven Central publishes, for the versions of deploy/local/versions.env", () => {
    const text = dockerfile("lakehouse-jobs");
    const args = Object.fromEntries([...text.matchAll(/^ARG ([A-Z0-9_]+)=(\S+)$/gm)].map((m) => [m[1], m[2]]));
    const versions = Object.fromEntries(
      readFileSync(join(ROOT, "deploy/local/versions.env"), "utf8")
        .split("\n")
        .filter((l) => /^[A-Z0-9_]+=/.test(l))
        .map((l) => l.split("=") as [string, string]),
    );
    expect(args).toMatchObject({
      ICEBERG_VERSION: versions["ICEBERG_VERSION"],
      NESSIE_VERSION: versions["NESSIE_VERSION"],
      SPARK_VERSION: versions["SPARK_VERSION"],
      KAFKA_CLIENTS_VERSION: versions["SPARK_KAFKA_CLIENTS_VERSION"],
      COMMONS_POOL2_VERSION: versions["SPARK_COMMONS_POOL2_VERSION"],
      ECJ_VERSION: versions["ECJ_VERSION"],
    });
    const entries = [...text.matchAll(/"([0-9a-f]{40}) (\S+\.jar)"/g)].map((m) => ({ sha1: m[1] as string, path: (m[2] as string).replace(/\$\{([A-Z0-9_]+)\}/g, (_x, v: string) => String(args[v])) }));
    expect(entries).toHaveLength(7);
    // Maven's local repository of the stack (scripts/setup -> deploy/local/fetch) holds each jar with the
    // .sha1 file it downloaded from Maven Central.
    const m2 = join(process.env["SIMGATE_CACHE"] ?? join(homedir(), ".cache", "simgate"), "m2");
    for (const e of entries) {
      const published = readFileSync(join(m2, `${e.path}.sha1`), "utf8").trim().slice(0, 40);
      expect(e.sha1, e.path).toBe(published);
    }
    // The Eclipse compiler that builds the jobs' own jar in the image, checked the same way.
    const ecj = `org/eclipse/jdt/ecj/${String(args["ECJ_VERSION"])}/ecj-${String(args["ECJ_VERSION"])}.jar`;
    expect(args["ECJ_SHA1"], ecj).toBe(readFileSync(join(m2, `${ecj}.sha1`), "utf8").trim().slice(0, 40));
    expect(text).toMatch(/sha1sum -c -; \\\n\s+mkdir classes/);
    expect(text).toMatch(/^ENV SIMGATE_JOBS_JAR=\/opt\/simgate\/jars\/simgate-lakehouse-jobs\.jar$/m);

    // The download-and-verify step itself, run against that repository (file://): it passes, and one
    // wrong checksum fails it.
    const run = /^RUN (set -eux; mkdir -p \/opt\/simgate\/jars;[\s\S]*?done)$/m.exec(text)?.[1] as string;
    expect(run).toBeDefined();
    const script = (dir: string, body: string): string => body.replaceAll("/opt/simgate/jars", join(dir, "jars"));
    const env = { ...process.env, ...args, MAVEN: `file://${m2}` } as NodeJS.ProcessEnv;
    const good = mkdtempSync(join(tmpdir(), "simgate-jars-"));
    tmpDirs.push(good);
    const ok = spawnSync("bash", ["-c", script(good, run)], { encoding: "utf8", env, timeout: 120_000 });
    expect(ok.status, ok.stderr).toBe(0);
    expect(readdirSync(join(good, "jars")).sort()).toEqual(entries.map((e) => e.path.split("/").at(-1) as string).sort());
    const bad = mkdtempSync(join(tmpdir(), "simgate-jars-"));
    tmpDirs.push(bad);
    const tampered = run.replace(entries[0]?.sha1 as string, "0".repeat(40));
    const fail = spawnSync("bash", ["-c", script(bad, tampered)], { encoding: "utf8", env, timeout: 120_000 });
    expect(fail.status).not.toBe(0);
    expect(fail.stdout + fail.stderr).toMatch(/FAILED/);

    // That build step itself, run here with this checkout's sources and pyspark's jars for the image's
    // Spark: it verifies the compiler, compiles, and leaves the jar with the contract's class.
    const build = /^RUN (set -eux; cd \/tmp;[\s\S]*?rm -rf classes "ecj-\$\{ECJ_VERSION\}\.jar")$/m.exec(text)?.[1] as string;
    expect(build).toBeDefined();
    const work = mkdtempSync(join(tmpdir(), "simgate-jobs-jar-"));
    tmpDirs.push(work);
    const pysparkJars = spawnSync(join(ROOT, ".venv", "bin", "python"), ["-c", "import pyspark, os; print(os.path.join(os.path.dirname(pyspark.__file__), 'jars'))"], { encoding: "utf8" }).stdout.trim();
    const local = build
      .replaceAll("cd /tmp", `cd ${work}`)
      .replaceAll("/opt/spark/jars", pysparkJars)
      .replaceAll("/opt/simgate/lakehouse-jobs", join(ROOT, "lakehouse-jobs"))
      .replaceAll("/opt/simgate/jars", join(work, "jars"));
    const built = spawnSync("bash", ["-c", `mkdir -p ${join(work, "jars")} && ${local}`], { encoding: "utf8", env, timeout: 180_000 });
    expect(built.status, built.stderr).toBe(0);
    const listing = spawnSync(join(ROOT, ".venv", "bin", "python"), ["-m", "zipfile", "-l", join(work, "jars", "simgate-lakehouse-jobs.jar")], { encoding: "utf8" });
    expect(listing.stdout).toMatch(/dev\/simgate\/lakehouse\/RecordContract\.class/);
    expect(readdirSync(work).sort()).toEqual(["jars"]); // the compiler and the classes are gone
  });
});

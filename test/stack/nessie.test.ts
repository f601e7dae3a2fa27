// The local Nessie is real: through its REST API v2, create a branch, commit to it, merge it into main,
// tag the result and read the log of main.
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { stackEnv } from "./stack-env.js";

interface Reference { type: string; name: string; hash: string }

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${stackEnv.nessieUri}${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

const table = (metadataLocation: string) =>
  ({ type: "ICEBERG_TABLE", metadataLocation, snapshotId: 1, schemaId: 0, specId: 0, sortOrderId: 0 });

const ref = async (name: string) => (await api<{ reference: Reference }>("GET", `/trees/${name}`)).reference;

describe("local Nessie", () => {
  it("creates a branch, commits, merges into main, tags and shows it in the log", async () => {
    const id = randomUUID().slice(0, 8);
    // main must have a commit for a merge base to exist: commit a namespace on main first.
    let main = await ref("main");
    main = (await api<{ targetBranch: Reference }>("POST", `/trees/main@${main.hash}/history/commit`, {
      commitMeta: { message: `stack test ${id}: namespace on main` },
      operations: [{ type: "PUT", key: { elements: [`stacktest_${id}`] }, content: { type: "NAMESPACE", elements: [`stacktest_${id}`] } }],
    })).targetBranch;

    const branch = `stacktest-${id}`;
    await api("POST", `/trees?name=${branch}&type=BRANCH`, { type: "BRANCH", name: "main", hash: main.hash });
    const created = await ref(branch);
    expect(created.hash).toBe(main.hash);

    const key = { elements: [`stacktest_${id}`, "child"] };
    const committed = await api<{ targetBranch: Reference }>("POST", `/trees/${branch}@${created.hash}/history/commit`, {
      commitMeta: { message: `stack test ${id}: child namespace` },
      operations: [{ type: "PUT", key, content: { type: "NAMESPACE", elements: key.elements } }],
    });
    expect(committed.targetBranch.hash).not.toBe(created.hash);

    const merged = await api<{ resultantTargetHash: string; wasSuccessful?: boolean }>(
      "POST", `/trees/main@${main.hash}/history/merge`, { fromRefName: branch, fromHash: committed.targetBranch.hash },
    );
    expect(merged.resultantTargetHash).not.toBe(main.hash);
    const mainAfter = await ref("main");
    expect(mainAfter.hash).toBe(merged.resultantTargetHash);

    // The expected hash guards the merge: a branch whose change conflicts with what reached main after
    // that hash is refused with 409 and main stays where it was.
    const clash = { elements: [`stacktest_${id}`, "clash"] };
    const late = `stacktest-late-${id}`;
    await api("POST", `/trees?name=${late}&type=BRANCH`, { type: "BRANCH", name: "main", hash: mainAfter.hash });
    const lateCommit = await api<{ targetBranch: Reference }>("POST", `/trees/${late}@${mainAfter.hash}/history/commit`, {
      commitMeta: { message: `stack test ${id}: clash on branch` },
      operations: [{ type: "PUT", key: clash, content: table("s3://simgate-warehouse/stacktest/branch.metadata.json") }],
    });
    const mainMoved = (await api<{ targetBranch: Reference }>("POST", `/trees/main@${mainAfter.hash}/history/commit`, {
      commitMeta: { message: `stack test ${id}: clash on main` },
      operations: [{ type: "PUT", key: clash, content: table("s3://simgate-warehouse/stacktest/main.metadata.json") }],
    })).targetBranch;
    await expect(
      api("POST", `/trees/main@${mainAfter.hash}/history/merge`, { fromRefName: late, fromHash: lateCommit.targetBranch.hash }),
    ).rejects.toThrow(/HTTP 409/);
    expect((await ref("main")).hash).toBe(mainMoved.hash);
    await api("DELETE", `/trees/${late}@${lateCommit.targetBranch.hash}`);

    const tag = `stacktest-tag-${id}`;
    await api("POST", `/trees?name=${tag}&type=TAG`, { type: "BRANCH", name: "main", hash: mainAfter.hash });
    expect((await ref(tag)).hash).toBe(mainAfter.hash);
    expect((await ref(tag)).type).toBe("TAG");

    // The log of main shows the merge as one merge commit whose second parent is the branch's head.
    const log = await api<{ logEntries: { commitMeta: { hash: string; message: string; parentCommitHashes: string[] } }[] }>(
      "GET", `/trees/main/history?max-records=200`,
    );
    const mergeCommit = log.logEntries.find((e) => e.commitMeta.hash === merged.resultantTargetHash);
    expect(mergeCommit?.commitMeta.message).toContain(`Merged ${branch}`);
    expect(mergeCommit?.commitMeta.parentCommitHashes).toEqual([main.hash, committed.targetBranch.hash]);

    const entries = await api<{ entries: { name: { elements: string[] } }[] }>("GET", `/trees/main/entries`);
    expect(entries.entries.some((e) => e.name.elements.join(".") === key.elements.join("."))).toBe(true);

    await api("DELETE", `/trees/${branch}@${committed.targetBranch.hash}`);
    await expect(ref(branch)).rejects.toThrow(/HTTP 404/);

    // Leave main's catalog as it was: what this test put there goes again (the tag keeps the history).
    const mine = (await api<{ entries: { name: { elements: string[] } }[] }>("GET", `/trees/main/entries`)).entries
      .filter((e) => e.name.elements[0] === `stacktest_${id}`)
      .sort((a, b) => b.name.elements.length - a.name.elements.length);
    await api("POST", `/trees/main@${(await ref("main")).hash}/history/commit`, {
      commitMeta: { message: `stack test ${id}: clean up` },
      operations: mine.map((e) => ({ type: "DELETE", key: { elements: e.name.elements } })),
    });
    const after = await api<{ entries: { name: { elements: string[] } }[] }>("GET", `/trees/main/entries`);
    expect(after.entries.filter((e) => e.name.elements[0] === `stacktest_${id}`)).toEqual([]);
    await api("DELETE", `/trees/${tag}@${mainAfter.hash}`);
  });
});

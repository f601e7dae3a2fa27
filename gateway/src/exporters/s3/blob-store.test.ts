// The blob store alone, its S3 client's send replaced by a fake object store: every PUT is
// conditional, a taken key is compared by sha256 (equal = stored already, other = conflict, never
// overwritten), headFirst skips the upload of a stored object, and the store's errors are classed as
// S3 defines them (4xx other than throttling permanent; 5xx, throttling and network errors retryable).
import { HeadObjectCommand, PutObjectCommand, S3ServiceException } from "@aws-sdk/client-s3";
import { describe, expect, it, vi } from "vitest";
import { BlobStore, isPermanentStoreError, type PutBlobInput } from "./blob-store.js";

function s3Error(name: string, status: number): S3ServiceException {
  return new S3ServiceException({ name, $fault: status >= 500 ? "server" : "client", $metadata: { httpStatusCode: status }, message: name });
}

function fakeStore(fault?: unknown) {
  const store = new BlobStore({ endpoint: "http://127.0.0.1:1", region: "us-east-1", accessKeyId: "a", secretAccessKey: "b", bucket: "blobs", forcePathStyle: true, requestTimeoutMs: 1000, connectionTimeoutMs: 500, maxAttempts: 1, maxSockets: 4 });
  const objects = new Map<string, { body: Buffer; metadata: Record<string, string> }>();
  const calls: string[] = [];
  vi.spyOn(store.s3, "send").mockImplementation((async (command: unknown) => {
    if (fault) throw fault;
    if (command instanceof PutObjectCommand) {
      const key = command.input.Key as string;
      calls.push(`PUT ${key} if-none-match=${command.input.IfNoneMatch}`);
      if (command.input.IfNoneMatch === "*" && objects.has(key)) throw s3Error("PreconditionFailed", 412);
      objects.set(key, { body: command.input.Body as Buffer, metadata: command.input.Metadata ?? {} });
      return {};
    }
    if (command instanceof HeadObjectCommand) {
      const key = command.input.Key as string;
      calls.push(`HEAD ${key}`);
      const o = objects.get(key);
      if (!o) throw s3Error("NotFound", 404);
      return { Metadata: o.metadata };
    }
    throw new Error(`unexpected command ${String(command)}`);
  }) as never);
  return { store, objects, calls };
}

const input = (bytes: string, over: Partial<PutBlobInput> = {}): PutBlobInput => ({ key: "runs/r/events/e/v.png", bytes: Buffer.from(bytes), contentType: "image/png", sha256: `sha-${bytes}`, metadata: { view: "v" }, ...over });

describe("BlobStore", () => {
  it("uploads a new object with a conditional PUT and its sha256 in the metadata", async () => {
    const { store, objects, calls } = fakeStore();
    expect(await store.put(input("one"))).toEqual({ uri: "s3://blobs/runs/r/events/e/v.png", uploaded: true, requests: { put: 1, head: 0 } });
    expect(calls).toEqual(["PUT runs/r/events/e/v.png if-none-match=*"]);
    expect(objects.get("runs/r/events/e/v.png")?.metadata).toEqual({ view: "v", sha256: "sha-one" });
  });

  it("a taken key with the same sha256 is stored already; with another it is a conflict and is not overwritten", async () => {
    const { store, objects } = fakeStore();
    await store.put(input("one"));
    expect(await store.put(input("one"))).toMatchObject({ uploaded: false, requests: { put: 1, head: 1 } });
    await expect(store.put(input("two"))).rejects.toMatchObject({ code: "GW_ERR_EVENT_ID_CONFLICT" });
    expect(objects.get("runs/r/events/e/v.png")?.body.toString()).toBe("one");
  });

  it("headFirst: one HEAD and no upload when the object is there; HEAD then PUT when it is not", async () => {
    const { store, calls } = fakeStore();
    expect(await store.put(input("one", { headFirst: true }))).toMatchObject({ uploaded: true, requests: { put: 1, head: 1 } });
    calls.length = 0;
    expect(await store.put(input("one", { headFirst: true }))).toMatchObject({ uploaded: false, requests: { put: 0, head: 1 } });
    expect(calls).toEqual(["HEAD runs/r/events/e/v.png"]);
  });

  it.each([
    ["NoSuchBucket", 404, "GW_ERR_STORAGE_REJECTED"],
    ["AccessDenied", 403, "GW_ERR_STORAGE_REJECTED"],
    ["SlowDown", 503, "GW_ERR_STORAGE_UNAVAILABLE"],
    ["TooManyRequests", 429, "GW_ERR_STORAGE_UNAVAILABLE"],
    ["RequestTimeout", 400, "GW_ERR_STORAGE_UNAVAILABLE"],
    ["InternalError", 500, "GW_ERR_STORAGE_UNAVAILABLE"],
  ] as const)("%s (%i) is %s", async (name, status, code) => {
    const { store } = fakeStore(s3Error(name, status));
    await expect(store.put(input("x"))).rejects.toMatchObject({ code });
  });

  it("a network error is retryable", async () => {
    const { store } = fakeStore(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }));
    await expect(store.put(input("x"))).rejects.toMatchObject({ code: "GW_ERR_STORAGE_UNAVAILABLE" });
    expect(isPermanentStoreError(new Error("socket hang up"))).toBe(false);
  });
});

// The local object store is a real S3-compatible server: put, head, get, list, delete, a multipart upload
// of a few MB, and the SDK's own not-found error for a missing key.
import { createHash, randomBytes, randomUUID } from "node:crypto";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  NotFound,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { describe, expect, it } from "vitest";
import { stackEnv } from "./stack-env.js";

const s3 = new S3Client({
  endpoint: stackEnv.s3Endpoint,
  region: stackEnv.s3Region,
  forcePathStyle: true,
  credentials: { accessKeyId: stackEnv.s3AccessKey, secretAccessKey: stackEnv.s3SecretKey },
  requestChecksumCalculation: "WHEN_REQUIRED",
  responseChecksumValidation: "WHEN_REQUIRED",
});
const Bucket = stackEnv.blobBucket;
const prefix = `stack-test/${randomUUID()}/`;
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("local object store", () => {
  it("puts, heads, gets, lists and deletes an object", async () => {
    const Key = `${prefix}small.bin`;
    const body = randomBytes(4096);
    await s3.send(new PutObjectCommand({ Bucket, Key, Body: body, ContentType: "application/octet-stream", Metadata: { sha256: sha256(body) } }));

    const head = await s3.send(new HeadObjectCommand({ Bucket, Key }));
    expect(head.ContentLength).toBe(body.length);
    expect(head.Metadata?.sha256).toBe(sha256(body));

    const got = await s3.send(new GetObjectCommand({ Bucket, Key }));
    expect(sha256(await got.Body!.transformToByteArray())).toBe(sha256(body));

    const listed = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: prefix }));
    expect(listed.Contents?.map((o) => o.Key)).toEqual([Key]);

    await s3.send(new DeleteObjectCommand({ Bucket, Key }));
    await expect(s3.send(new HeadObjectCommand({ Bucket, Key }))).rejects.toBeInstanceOf(NotFound);
  });

  it("stores a multipart upload of several MB intact", async () => {
    const Key = `${prefix}multipart.bin`;
    const body = randomBytes(12 * 1024 * 1024 + 12345);
    const upload = new Upload({ client: s3, params: { Bucket, Key, Body: body }, partSize: 5 * 1024 * 1024, queueSize: 2 });
    await upload.done();
    const got = await s3.send(new GetObjectCommand({ Bucket, Key }));
    const bytes = await got.Body!.transformToByteArray();
    expect(bytes.length).toBe(body.length);
    expect(sha256(bytes)).toBe(sha256(body));
    await s3.send(new DeleteObjectCommand({ Bucket, Key }));
  });

  it("answers a missing key with the SDK's NoSuchKey error", async () => {
    await expect(s3.send(new GetObjectCommand({ Bucket, Key: `${prefix}missing` }))).rejects.toBeInstanceOf(NoSuchKey);
  });
});

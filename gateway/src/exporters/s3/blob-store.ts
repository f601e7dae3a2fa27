// The blobs exporter: writes images (and quarantined payloads) to the S3-compatible object store.
// Every PUT is conditional (If-None-Match: *), so an object is never overwritten: when the key is
// taken (412) a HEAD compares the stored sha256 with ours; equal = already stored (no second upload),
// different = GW_ERR_EVENT_ID_CONFLICT. With headFirst the HEAD comes before the PUT instead (a resend
// whose object is there then costs one HEAD and no upload).
import { Agent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import {
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { GatewayError } from "../../errors/gateway-error.js";

export interface BlobStoreOptions {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
  forcePathStyle: boolean;
  requestTimeoutMs: number;
  connectionTimeoutMs: number;
  /** Attempts per request, the first included. */
  maxAttempts: number;
  maxSockets: number;
}

export interface PutBlobInput {
  key: string;
  bytes: Buffer;
  contentType: string;
  sha256: string;
  metadata: Record<string, string>;
  /** HEAD before the PUT and skip the upload when an identical object is there (default false; the
   *  PUT is conditional either way). */
  headFirst?: boolean;
}

export interface PutBlobResult {
  uri: string;
  /** False when an identical object was already there. */
  uploaded: boolean;
  /** Requests sent to the store for it (PUTs carry the bytes, HEADs do not). */
  requests: { put: number; head: number };
}

/** SigV4 signs the payload's sha256; when the caller already has it, the signer uses this header
 *  instead of hashing the bytes a second time on the event loop. */
export function withPayloadSha256(put: PutObjectCommand, sha256: string): PutObjectCommand {
  put.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers) request.headers["x-amz-content-sha256"] = sha256;
      return next(args);
    },
    { step: "build", name: "simgatePrecomputedPayloadHash" },
  );
  return put;
}

function isPreconditionFailed(err: unknown): boolean {
  return err instanceof S3ServiceException && (err.$metadata.httpStatusCode === 412 || err.name === "PreconditionFailed");
}

function isNotFound(err: unknown): boolean {
  return err instanceof S3ServiceException && (err.$metadata.httpStatusCode === 404 || err.name === "NotFound" || err.name === "NoSuchKey");
}

const THROTTLING = new Set(["SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests", "RequestThrottled", "RequestTimeout"]);

/** A 4xx answer other than throttling or a timeout: the store refused the request for good (no such
 *  bucket, access denied, invalid request). Network errors, timeouts and 5xx are retryable. */
export function isPermanentStoreError(err: unknown): boolean {
  if (!(err instanceof S3ServiceException)) return false;
  const status = err.$metadata.httpStatusCode ?? 0;
  if (status < 400 || status >= 500) return false;
  return status !== 408 && status !== 409 && status !== 429 && !THROTTLING.has(err.name);
}

export class BlobStore {
  private readonly client: S3Client;

  constructor(private readonly options: BlobStoreOptions) {
    const agentOptions = { keepAlive: true, maxSockets: options.maxSockets };
    this.client = new S3Client({
      endpoint: options.endpoint,
      region: options.region,
      credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey },
      forcePathStyle: options.forcePathStyle,
      // S3Proxy and other S3-compatible stores do not all accept the SDK's default flexible checksums.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      maxAttempts: options.maxAttempts,
      requestHandler: {
        requestTimeout: options.requestTimeoutMs,
        connectionTimeout: Math.min(options.requestTimeoutMs, options.connectionTimeoutMs),
        httpAgent: new Agent(agentOptions),
        httpsAgent: new HttpsAgent(agentOptions),
      },
    });
  }

  /** The underlying client (for uploads that are not blobs, e.g. run recordings). */
  get s3(): S3Client {
    return this.client;
  }

  get bucket(): string {
    return this.options.bucket;
  }

  uri(key: string): string {
    return `s3://${this.options.bucket}/${key}`;
  }

  private signal(): AbortSignal {
    return AbortSignal.timeout(this.options.requestTimeoutMs);
  }

  async put(input: PutBlobInput): Promise<PutBlobResult> {
    const uri = this.uri(input.key);
    const requests = { put: 0, head: 0 };
    try {
      if (input.headFirst === true) {
        requests.head++;
        const stored = await this.storedSha256(input.key);
        if (stored !== undefined) return this.compare(input, stored, requests);
      }
      try {
        requests.put++;
        await this.conditionalPut(input);
        return { uri, uploaded: true, requests };
      } catch (err) {
        if (!isPreconditionFailed(err)) throw err;
      }
      // The key is taken: identical bytes are fine, anything else is a conflict, never overwritten.
      requests.head++;
      return this.compare(input, await this.storedSha256(input.key), requests);
    } catch (err) {
      if (err instanceof GatewayError) throw err;
      if (isPermanentStoreError(err)) throw new GatewayError("GW_ERR_STORAGE_REJECTED", `object store refused ${input.key}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      throw new GatewayError("GW_ERR_STORAGE_UNAVAILABLE", `object store: ${input.key}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  private compare(input: PutBlobInput, stored: string | undefined, requests: PutBlobResult["requests"]): PutBlobResult {
    if (stored === input.sha256) return { uri: this.uri(input.key), uploaded: false, requests };
    throw new GatewayError(
      "GW_ERR_EVENT_ID_CONFLICT",
      `event id already used with different content: ${this.uri(input.key)} holds sha256 ${stored ?? "(none)"}, this image has ${input.sha256}`,
    );
  }

  /** The sha256 metadata of the object at key, "" when it has none, undefined when there is none. */
  private async storedSha256(key: string): Promise<string | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: key }), { abortSignal: this.signal() });
      return head.Metadata?.["sha256"] ?? "";
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private async conditionalPut(input: PutBlobInput): Promise<void> {
    const put = new PutObjectCommand({
      Bucket: this.options.bucket,
      Key: input.key,
      Body: input.bytes,
      ContentLength: input.bytes.length,
      ContentType: input.contentType,
      Metadata: { ...input.metadata, sha256: input.sha256 },
      IfNoneMatch: "*",
    });
    await this.client.send(withPayloadSha256(put, input.sha256), { abortSignal: this.signal() });
  }

  /** Readiness probe: the bucket answers. */
  async probe(timeoutMs: number): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.options.bucket }), { abortSignal: AbortSignal.timeout(timeoutMs) });
  }

  close(): void {
    this.client.destroy();
  }
}

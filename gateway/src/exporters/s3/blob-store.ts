// The blobs exporter: writes images (and quarantined payloads) to the S3-compatible object store.
// HEAD first: an object already there with the same sha256 is not uploaded again.
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
  maxSockets: number;
}

export interface PutBlobInput {
  key: string;
  bytes: Buffer;
  contentType: string;
  sha256: string;
  metadata: Record<string, string>;
  /** HEAD first and skip the upload when an identical object is there (default true). */
  checkExisting?: boolean;
}

export interface PutBlobResult {
  uri: string;
  /** False when an identical object was already there. */
  uploaded: boolean;
}

function isNotFound(err: unknown): boolean {
  return err instanceof S3ServiceException && (err.$metadata.httpStatusCode === 404 || err.name === "NotFound" || err.name === "NoSuchKey");
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
      maxAttempts: 2,
      requestHandler: {
        requestTimeout: options.requestTimeoutMs,
        connectionTimeout: Math.min(options.requestTimeoutMs, 3000),
        httpAgent: new Agent(agentOptions),
        httpsAgent: new HttpsAgent(agentOptions),
      },
    });
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
    try {
      if (input.checkExisting !== false) {
        try {
          const head = await this.client.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: input.key }), { abortSignal: this.signal() });
          if (head.Metadata?.["sha256"] === input.sha256 && head.ContentLength === input.bytes.length) return { uri, uploaded: false };
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }
      const put = new PutObjectCommand({
        Bucket: this.options.bucket,
        Key: input.key,
        Body: input.bytes,
        ContentLength: input.bytes.length,
        ContentType: input.contentType,
        Metadata: { ...input.metadata, sha256: input.sha256 },
      });
      // SigV4 signs the payload's sha256; we already have it, so the signer need not hash the bytes a
      // second time on the event loop (it uses this header when present).
      put.middlewareStack.add(
        (next) => async (args) => {
          const request = args.request as { headers?: Record<string, string> };
          if (request.headers) request.headers["x-amz-content-sha256"] = input.sha256;
          return next(args);
        },
        { step: "build", name: "simgatePrecomputedPayloadHash" },
      );
      await this.client.send(put, { abortSignal: this.signal() });
      return { uri, uploaded: true };
    } catch (err) {
      throw new GatewayError("GW_ERR_STORAGE_UNAVAILABLE", `object store: ${input.key}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  /** Readiness probe: the bucket answers. */
  async probe(timeoutMs: number): Promise<void> {
    await this.client.send(new HeadBucketCommand({ Bucket: this.options.bucket }), { abortSignal: AbortSignal.timeout(timeoutMs) });
  }

  close(): void {
    this.client.destroy();
  }
}

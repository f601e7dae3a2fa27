// Uploads a finished run recording to the object store: s3://<bucket>/<keyPrefix>recordings/<runId>.simrec
// (multipart for large files, through @aws-sdk/lib-storage). For RunRecorder's `upload` option.
import { createReadStream } from "node:fs";
import type { S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";

export function recordingKey(keyPrefix: string, runId: string): string {
  return `${keyPrefix}recordings/${runId}.simrec`;
}

export function s3RecordingUploader(client: S3Client, bucket: string, keyPrefix = ""): (runId: string, path: string) => Promise<void> {
  return async (runId, path) => {
    const upload = new Upload({
      client,
      params: {
        Bucket: bucket,
        Key: recordingKey(keyPrefix, runId),
        Body: createReadStream(path),
        ContentType: "application/vnd.simgate.simrec",
      },
      queueSize: 2,
      partSize: 8 * 1024 * 1024,
    });
    await upload.done();
  };
}

// Where the local stack listens, as `deploy/local/stack env` prints it; defaults are the stack's.
export const stackEnv = {
  kafkaBootstrap: process.env.KAFKA_BOOTSTRAP ?? "127.0.0.1:9092",
  s3Endpoint: process.env.S3_ENDPOINT ?? "http://127.0.0.1:9333",
  s3AccessKey: process.env.S3_ACCESS_KEY ?? "simgate",
  s3SecretKey: process.env.S3_SECRET_KEY ?? "simgate-secret",
  s3Region: process.env.S3_REGION ?? "us-east-1",
  blobBucket: process.env.S3_BLOB_BUCKET ?? "simgate-blobs",
  nessieUri: process.env.NESSIE_URI ?? "http://127.0.0.1:19120/api/v2",
};

// The gateway's configuration, its plugins' included (the job driver's `jobs` section): every option,
// its default and its unit. Parsed once at start-up into a fully resolved GatewayConfig (times in
// milliseconds, sizes in bytes). See gateway/README.md.
import { z } from "zod";

const MiB = 1024 * 1024;
const port = z.number().int().min(0).max(65535);
const topicName = z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, "a Kafka topic name ([A-Za-z0-9._-], 1..249)");
const eventType = z.string().regex(/^[a-z0-9._-]{1,64}$/, "an event type ([a-z0-9._-], 1..64)");

/** The job driver (a plugin, gateway/src/jobs/): which launcher starts the WAP jobs and when. It is
 *  off unless a launcher is chosen, so a gateway without Spark runs as before. */
const jobsSection = z
  .object({
    /** "none": no jobs are started (the driver still counts records and shows /jobs); "local": spawn
     *  the WAP job from the project's Python; "kubernetes": create SparkApplications. */
    launcher: z.enum(["none", "local", "kubernetes"]).default("none"),
    /** Topics with a WAP job. Empty: every event topic of the gateway's topic map. */
    topics: z.array(topicName).default([]),
    /** Start a topic's job when its run ends (a run-end record was produced). */
    onRunEnd: z.boolean().default(true),
    /** Start a topic's job after this many records since its last start (0 = off). */
    everyRecords: z.number().int().min(0).default(0),
    /** Start a topic's job this long after its first record not yet handed to a job (0 = off). */
    everyMs: z.number().int().min(0).default(0),
    /** Jobs running at once over all topics (one topic never runs twice at once). On a 2-core
     *  machine one Spark job at a time; it also runs entries before exits when a run end starts both. */
    maxConcurrent: z.number().int().min(1).default(1),
    /** Attempts per job, the first included; then the job is given up until the next trigger. */
    maxAttempts: z.number().int().min(1).default(4),
    /** Back-off before attempt n+1: backoffMs * 2^(n-1), at most backoffMaxMs. */
    backoffMs: z.number().int().min(0).default(10_000),
    backoffMaxMs: z.number().int().min(0).default(300_000),
    /** A job running longer is stopped and counts as failed. */
    timeoutMs: z.number().int().min(1000).default(30 * 60_000),
    /** Storage maintenance (simgate.lakehouse.maintenance: compaction, manifest rewrite on main) every
     *  this many ms, queued with the WAP runs so it never runs beside them (0 = off; local launcher
     *  only: in a cluster it is a ScheduledSparkApplication). */
    maintenanceEveryMs: z.number().int().min(0).default(0),
    /** Finished runs kept for /jobs. */
    historySize: z.number().int().min(1).default(50),
    local: z
      .object({
        /** Python of the project's venv (pyspark, the lakehouse-jobs package). Default <repo>/.venv/bin/python. */
        python: z.string().min(1).optional(),
        /** The job's JSON configuration (passed as --config). */
        wapConfigFile: z.string().min(1).optional(),
        /** Extra environment for the job (the stack settings are passed through from the gateway's). */
        env: z.record(z.string(), z.string()).default({}),
        /** WAP runs go to a warm worker that keeps its Spark session between runs (no JVM start per
         *  run); false: one process per run. A worker whose JVM died is replaced at the next run. */
        warm: z.boolean().default(true),
        /** A warm worker idle this long is stopped (its JVM holds about 1 GB); the next run starts one. */
        warmIdleMs: z.number().int().min(1000).default(600_000),
        /** With warm on: a warm worker is started when the gateway starts and warms up Spark and the
         *  run's read paths, so the first run finds a warm JVM. */
        prewarm: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    kubernetes: z
      .object({
        /** API server; in a pod, https://kubernetes.default.svc. */
        apiUrl: z.string().url().default("https://kubernetes.default.svc"),
        /** Namespace of the SparkApplications; default: the service account's namespace file, else "simgate". */
        namespace: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/).optional(),
        tokenFile: z.string().default("/var/run/secrets/kubernetes.io/serviceaccount/token"),
        caFile: z.string().default("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"),
        image: z.string().min(1).default("registry.example.com/simgate/lakehouse-jobs:0.1.0"),
        serviceAccount: z.string().min(1).default("simgate-spark"),
        /** How often a running SparkApplication's state is read. */
        pollMs: z.number().int().min(100).default(5_000),
        executorInstances: z.number().int().min(1).default(2),
        /** Leader election among the gateway replicas (leader-lease.ts): only the holder of this
         *  coordination.k8s.io Lease starts jobs. "" turns it off (a single replica). */
        leaseName: z.union([z.literal(""), z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/)]).default("simgate-gateway-jobs"),
        /** A holder that has not renewed for this long is replaced; it renews every leaseDurationMs / 7.5 (client-go's 15 s / 2 s). */
        leaseDurationMs: z.number().int().min(3000).default(15_000),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export const configSchema = z
  .object({
    /** Name of this gateway instance, written into every record's `ingest.gatewayId`. */
    gatewayId: z.string().min(1).max(64).default("gw-1"),
    /** Address both servers bind to. Anything but loopback requires auth.token. */
    host: z.string().min(1).default("127.0.0.1"),
    grpc: z
      .object({
        /** gRPC port (0 = pick a free port). */
        port: port.default(50051),
        /** HTTP/2 receive window per stream (SETTINGS_INITIAL_WINDOW_SIZE). At least one event's size, so a
         *  sender need not wait for window updates in the middle of an event; a paused stream buffers at
         *  most this much. Node's default is 64 KiB. */
        streamWindowBytes: z.number().int().min(65535).max(2 ** 31 - 1).default(4 * MiB),
        /** HTTP/2 receive window per connection: the most one connection can have buffered, unread, over
         *  all its streams. */
        connectionWindowBytes: z.number().int().min(65535).max(2 ** 31 - 1).default(16 * MiB),
        /** Concurrent streams (calls) one connection may open (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). */
        maxConcurrentStreams: z.number().int().min(1).default(128),
        /** How often the server pings an idle connection to find a dead peer (0 = never, grpc-js'
         *  default). Behind a load balancer that drops idle connections, below its idle timeout. */
        keepaliveTimeMs: z.number().int().min(0).default(0),
        /** How long the server waits for a ping's answer before it closes the connection. */
        keepaliveTimeoutMs: z.number().int().min(1).default(20_000),
      })
      .strict()
      .prefault({}),
    http: z
      .object({
        /** HTTP port serving /healthz, /readyz, /metrics and the WebSocket endpoint. */
        port: port.default(8080),
        /** Path of the WebSocket endpoint on the HTTP port. */
        wsPath: z.string().regex(/^\/[A-Za-z0-9/_.-]*$/).default("/v1/events"),
        /** How long an idle HTTP keep-alive connection (probes, /metrics scrapes) is kept open. */
        keepAliveTimeoutMs: z.number().int().min(0).default(5_000),
      })
      .strict()
      .prefault({}),
    auth: z
      .object({
        /** Bearer token required on both transports (gRPC metadata / WebSocket upgrade header
         *  `authorization: Bearer <token>`). Unset: no authentication, loopback only. */
        token: z.string().min(16, "at least 16 characters").optional(),
      })
      .strict()
      .prefault({}),
    tls: z
      .object({
        /** PEM certificate chain and key; both set = TLS on gRPC and HTTPS/WSS on the HTTP port. */
        certFile: z.string().optional(),
        keyFile: z.string().optional(),
      })
      .strict()
      .prefault({})
      .refine((t) => (t.certFile === undefined) === (t.keyFile === undefined), "tls.certFile and tls.keyFile go together"),
    kafka: z
      .object({
        /** Bootstrap brokers, host:port. */
        brokers: z.array(z.string().min(1)).min(1).default(["127.0.0.1:9092"]),
        clientId: z.string().min(1).default("simgate-gateway"),
        /** Event type → topic. An event type missing here is rejected (GW_ERR_UNKNOWN_EVENT_TYPE). */
        topicMap: z.record(eventType, topicName).default({ "parking.entry": "parking-entries", "parking.exit": "parking-exits" }),
        /** Rejected input with its reason. */
        deadLetterTopic: topicName.default("simgate-dead-letter"),
        /** Run start and run end records. */
        runsTopic: topicName.default("simgate-runs"),
        /** Partitions and replication factor of topics the gateway creates at start-up. */
        partitions: z.number().int().min(1).default(3),
        replicationFactor: z.number().int().min(1).default(1),
        /** How long one produce may take before the event is answered retry-later. Within it the
         *  producer resends an unanswered request with the same producer id and sequence numbers, which
         *  the broker deduplicates; only past it is the producer replaced (a resend may then duplicate a
         *  record a stalled broker wrote late; docs/records.md, "Delivery"). Longer than a broker stall
         *  you want to ride out without duplicates. */
        produceTimeoutMs: z.number().int().min(100).default(30_000),
        /** One produce request's timeout (the client's, and the broker's wait for acks=all); a request
         *  unanswered within it is resent (same sequence). At most half of produceTimeoutMs. */
        requestTimeoutMs: z.number().int().min(50).default(5_000),
        /** Connecting to a broker. */
        connectionTimeoutMs: z.number().int().min(50).default(3_000),
        /** Largest number of records in one produce request. */
        maxBatchRecords: z.number().int().min(1).default(500),
        /** Retries of the client's own requests (connecting, metadata) before a produce fails. */
        clientRetries: z.number().int().min(0).default(2),
        /** First and longest wait between the client's retries (exponential in between). */
        retryInitialMs: z.number().int().min(1).default(200),
        retryMaxMs: z.number().int().min(1).default(2_000),
        /** Longest wait between the producer's resends of an unanswered produce request (within
         *  produceTimeoutMs; their number follows from produceTimeoutMs / requestTimeoutMs). */
        resendMaxMs: z.number().int().min(1).default(1_000),
      })
      .strict()
      .prefault({})
      .refine((k) => k.requestTimeoutMs * 2 <= k.produceTimeoutMs, { message: "kafka.requestTimeoutMs must be at most half of kafka.produceTimeoutMs (the producer resends within the produce timeout)", path: ["requestTimeoutMs"] }),
    s3: z
      .object({
        endpoint: z.string().url().default("http://127.0.0.1:9333"),
        region: z.string().min(1).default("us-east-1"),
        accessKeyId: z.string().min(1).default("simgate"),
        secretAccessKey: z.string().min(1).default("simgate-secret"),
        /** Bucket for images and quarantined payloads. */
        bucket: z.string().min(3).default("simgate-blobs"),
        /** Prefix before every key the gateway writes ("" or ending in "/"). */
        keyPrefix: z.string().regex(/^([A-Za-z0-9._-]+\/)*$/).default(""),
        forcePathStyle: z.boolean().default(true),
        /** How an image is written without ever overwriting another one: every PUT carries
         *  If-None-Match: * (the store answers 412 when the key is taken; then a HEAD compares the stored
         *  sha256: equal = already stored, different = GW_ERR_EVENT_ID_CONFLICT, dead-lettered).
         *  "conditional": PUT first (one request per new image); "always": HEAD first, PUT only when
         *  missing; "on-retry": HEAD first only for an event id this gateway already tried to store. */
        checkExisting: z.enum(["conditional", "always", "on-retry"]).default("conditional"),
        /** Per request, after which the upload counts as failed (retry-later). */
        requestTimeoutMs: z.number().int().min(100).default(15_000),
        /** Sockets to the store kept open at most; 0 = twice limits.maxInFlight, at least 64 (an event
         *  has up to images.maxPerEvent uploads in flight). */
        maxSockets: z.number().int().min(0).default(0),
        /** Connecting to the store (at most requestTimeoutMs). */
        connectionTimeoutMs: z.number().int().min(50).default(3_000),
        /** Attempts per request by the S3 client, the first included (a retryable failure after the
         *  last is answered retry-later). */
        maxAttempts: z.number().int().min(1).default(2),
      })
      .strict()
      .prefault({}),
    images: z
      .object({
        /** What raw RGBA8 frames become: lossless PNG or lossless WebP. */
        rawFormat: z.enum(["png", "webp"]).default("png"),
        /** How encoded images are verified: "container" walks the container without decoding pixels (PNG
         *  chunks with CRC-32s, IHDR combinations, IEND last; JPEG segments to EOI with nothing after;
         *  WebP RIFF size); "structural" also inflates PNG data to its exact size (catches CRC-valid PNGs
         *  with broken zlib data, at a cost: test/bench/design-measurements.md); "decode" also fully decodes
         *  them with sharp. See gateway/README.md for what each guarantees. */
        verify: z.enum(["container", "structural", "decode"]).default("container"),
        /** Images per event. */
        maxPerEvent: z.number().int().min(0).default(8),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        /** Largest accepted message; larger ones (up to 2x, then the transport refuses them) are
         *  rejected with GW_ERR_MESSAGE_TOO_LARGE and quarantined. */
        maxMessageBytes: z.number().int().min(1024).default(32 * MiB),
        /** Pixel limit per image (width x height), checked before decoding. */
        maxImagePixels: z.number().int().min(1).default(40_000_000),
        /** Open connections (gRPC sessions + WebSockets). */
        maxConnections: z.number().int().min(1).default(256),
        /** Events being processed at once, all connections together. */
        maxInFlight: z.number().int().min(1).default(64),
        /** Message bytes in flight, over all connections: the same policy as maxInFlight when reached
         *  (whenFull). Bounds memory whatever the message sizes: passed by at most one message. */
        maxInFlightBytes: z.number().int().min(1).default(128 * MiB),
        /** Events being processed at once on one connection; when reached the gateway stops reading
         *  from it (HTTP/2 flow control, paused socket). */
        maxInFlightPerConnection: z.number().int().min(1).default(16),
        /** When the total is reached: "block" stops reading like above, "reject" answers retry-later
         *  (GW_ERR_THROTTLED). */
        whenFull: z.enum(["block", "reject"]).default("block"),
        /** Attributes per event, and the largest key or value. */
        maxAttributes: z.number().int().min(0).default(64),
        maxAttributeChars: z.number().int().min(1).default(1024),
        /** Longest car id and text. */
        maxCarIdChars: z.number().int().min(1).default(64),
        maxTextChars: z.number().int().min(0).default(4096),
        /** capture_time_unix_ms may be at most this far in the future, and not before 2000-01-01. */
        maxClockSkewMs: z.number().int().min(0).default(24 * 3600 * 1000),
      })
      .strict()
      .prefault({}),
    dedupe: z
      .object({
        /** Accepted event ids remembered (LRU) to answer resends "duplicate"; about 1 KiB each. */
        maxEntries: z.number().int().min(0).default(100_000),
        /** Runs remembered for the run lifecycle (started, ended, events in flight; docs/records.md "Run
         *  lifecycle"); beyond it the oldest idle runs are forgotten. About 0.5 KiB each. */
        maxRuns: z.number().int().min(1).default(10_000),
      })
      .strict()
      .prefault({}),
    health: z
      .object({
        /** How often Kafka and the object store are probed for /readyz and recovery. */
        checkIntervalMs: z.number().int().min(100).default(2_000),
        /** How long one probe may take before its dependency counts as down. Generous on purpose: a
         *  busy event loop must not look like an outage. */
        probeTimeoutMs: z.number().int().min(100).default(5_000),
        /** Retries of the Kafka probe's own requests within one probe. */
        probeRetries: z.number().int().min(0).default(1),
      })
      .strict()
      .prefault({}),
    shutdown: z
      .object({
        /** On SIGTERM: how long in-flight events may take to finish before the process exits anyway. */
        drainTimeoutMs: z.number().int().min(0).default(30_000),
      })
      .strict()
      .prefault({}),
    recording: z
      .object({
        /** Record each run as the gateway accepted it (RunStart, every accepted event as received, RunEnd)
         *  into `<directory>/<runId>.simrec`, replayable with `simgate replay`. "off" (default), "local"
         *  (the file stays in the directory), "s3" (also uploaded at run end to the blob bucket at
         *  `<s3.keyPrefix><recording.keyPrefix>recordings/<runId>.simrec`). */
        mode: z.enum(["off", "local", "s3"]).default("off"),
        /** Where the files are written (the destination for "local", a staging directory for "s3"). */
        directory: z.string().min(1).default("recordings"),
        /** Extra key prefix for uploads ("" or ending in "/"). */
        keyPrefix: z.string().regex(/^([A-Za-z0-9._-]+\/)*$/).default(""),
      })
      .strict()
      .prefault({}),
    log: z
      .object({
        level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
      })
      .strict()
      .prefault({}),
    jobs: jobsSection.prefault({}),
  })
  .strict();

export type GatewayConfig = z.output<typeof configSchema>;
export type JobsConfig = GatewayConfig["jobs"];

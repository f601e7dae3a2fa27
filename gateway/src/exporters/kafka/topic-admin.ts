// Creates the gateway's topics at start-up when missing (the broker's auto-creation is off), learns
// their partition counts, and probes the cluster for readiness.
import type { Admin, Kafka } from "kafkajs";

export class TopicAdmin {
  private admin: Admin | undefined;

  constructor(private readonly kafka: Kafka) {}

  private async connected(): Promise<Admin> {
    if (this.admin) return this.admin;
    const admin = this.kafka.admin();
    await admin.connect();
    this.admin = admin;
    return admin;
  }

  /** Creates missing topics and returns the partition count of each. */
  async ensureTopics(topics: readonly string[], partitions: number, replicationFactor: number): Promise<Map<string, number>> {
    const admin = await this.connected();
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t));
    if (missing.length > 0) {
      await admin.createTopics({
        topics: missing.map((topic) => ({ topic, numPartitions: partitions, replicationFactor })),
        waitForLeaders: true,
      });
    }
    const metadata = await admin.fetchTopicMetadata({ topics: [...topics] });
    return new Map(metadata.topics.map((t) => [t.name, t.partitions.length]));
  }

  async probe(timeoutMs: number): Promise<void> {
    const admin = await this.connected();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        admin.describeCluster(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (err) {
      // A fresh connection next time: kafkajs' admin does not always recover a broken one by itself.
      const admin = this.admin;
      this.admin = undefined;
      await admin?.disconnect().catch(() => undefined);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await this.admin?.disconnect().catch(() => undefined);
    this.admin = undefined;
  }
}

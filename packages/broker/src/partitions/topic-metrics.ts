import type { BoundCounter, RaftkaMetrics } from "@raftka/monitoring";

interface TopicSeries {
  readonly bytesIn: BoundCounter;
  readonly recordsProduced: BoundCounter;
  readonly bytesOut: BoundCounter;
  readonly recordsFetched: BoundCounter;
}

/** Per-topic traffic counters, with each topic's series looked up once. */
export class TopicMetrics {
  private readonly series = new Map<string, TopicSeries>();

  constructor(private readonly metrics: RaftkaMetrics | undefined) {}

  private seriesFor(topic: string): TopicSeries | undefined {
    if (!this.metrics) return undefined;
    let series = this.series.get(topic);
    if (!series) {
      const topics = this.metrics.topics;
      series = {
        bytesIn: topics.bytesIn.labels({ topic }),
        recordsProduced: topics.recordsProduced.labels({ topic }),
        bytesOut: topics.bytesOut.labels({ topic }),
        recordsFetched: topics.recordsFetched.labels({ topic }),
      };
      this.series.set(topic, series);
    }
    return series;
  }

  produced(topic: string, bytes: number, records: number): void {
    const series = this.seriesFor(topic);
    series?.bytesIn.inc(bytes);
    series?.recordsProduced.inc(records);
  }

  fetched(topic: string, bytes: number, records: number): void {
    if (bytes === 0) return;
    const series = this.seriesFor(topic);
    series?.bytesOut.inc(bytes);
    series?.recordsFetched.inc(records);
  }

  /** A deleted topic's series stop being exported. */
  forget(topic: string): void {
    if (!this.metrics || !this.series.delete(topic)) return;
    const topics = this.metrics.topics;
    topics.bytesIn.remove({ topic });
    topics.recordsProduced.remove({ topic });
    topics.bytesOut.remove({ topic });
    topics.recordsFetched.remove({ topic });
  }
}

import type { BoundCounter, BoundHistogram, RaftkaMetrics } from "@raftka/monitoring";
import { errorName } from "@raftka/protocol";

interface ApiSeries {
  readonly requests: BoundCounter;
  readonly requestBytes: BoundCounter;
  readonly responseBytes: BoundCounter;
  readonly queueSeconds: BoundHistogram;
  readonly handleSeconds: BoundHistogram;
  readonly responseQueueSeconds: BoundHistogram;
  readonly responseSendSeconds: BoundHistogram;
}

/** Calls `visit` for every non-zero `errorCode` in a response (one per partition or resource that failed). */
export function forEachErrorCode(value: unknown, visit: (code: number) => void): void {
  if (typeof value !== "object" || value === null || Buffer.isBuffer(value)) return;
  if (Array.isArray(value)) {
    for (const item of value) forEachErrorCode(item, visit);
    return;
  }
  // for...in rather than Object.entries: this runs for every response and should not allocate.
  const record = value as Record<string, unknown>;
  for (const key in record) {
    const field = record[key];
    if (key === "errorCode" && typeof field === "number") {
      if (field !== 0) visit(field);
    } else if (typeof field === "object" && field !== null) forEachErrorCode(field, visit);
  }
}

/** Kafka request metrics per API; series handles are looked up once per API, not per request. */
export class RequestMetrics {
  private readonly series = new Map<string, ApiSeries>();

  constructor(private readonly metrics: RaftkaMetrics | undefined) {}

  private seriesFor(api: string): ApiSeries | undefined {
    if (!this.metrics) return undefined;
    let series = this.series.get(api);
    if (!series) {
      const kafka = this.metrics.kafka;
      series = {
        requests: kafka.requests.labels({ api }),
        requestBytes: kafka.requestBytes.labels({ api }),
        responseBytes: kafka.responseBytes.labels({ api }),
        queueSeconds: kafka.requestQueueSeconds.labels({ api }),
        handleSeconds: kafka.requestHandleSeconds.labels({ api }),
        responseQueueSeconds: kafka.responseQueueSeconds.labels({ api }),
        responseSendSeconds: kafka.responseSendSeconds.labels({ api }),
      };
      this.series.set(api, series);
    }
    return series;
  }

  received(api: string, frameBytes: number, queueSeconds: number): void {
    const series = this.seriesFor(api);
    if (!series) return;
    series.requests.inc();
    series.requestBytes.inc(frameBytes);
    series.queueSeconds.observe(queueSeconds);
  }

  answered(api: string, handleSeconds: number, responseBytes: number, response: unknown): void {
    const series = this.seriesFor(api);
    if (!series) return;
    series.handleSeconds.observe(handleSeconds);
    series.responseBytes.inc(responseBytes);
    forEachErrorCode(response, (code) =>
      this.metrics!.kafka.requestErrors.inc({ api, error: errorName(code) }),
    );
  }

  /** A response went to the socket `waitedSeconds` after it was ready (behind earlier ones). */
  responseWritten(api: string, waitedSeconds: number): void {
    this.seriesFor(api)?.responseQueueSeconds.observe(waitedSeconds);
  }

  /** The kernel took all of a response `sendSeconds` after it went to the socket. */
  responseSent(api: string, sendSeconds: number): void {
    this.seriesFor(api)?.responseSendSeconds.observe(sendSeconds);
  }

  connectionOpened(listener: string): void {
    this.metrics?.kafka.connectionsAccepted.inc({ listener });
    this.metrics?.kafka.connections.inc({ listener });
  }

  connectionClosed(listener: string): void {
    this.metrics?.kafka.connections.dec({ listener });
  }

  requestBytesHeld(bytes: number): void {
    this.metrics?.kafka.requestBytesHeld.set(bytes);
  }
}

import { AdminClient } from "./admin/admin-client.js";
import type { Interrupts } from "./interrupts.js";
import type { BrokerAddress } from "./kafka/addresses.js";
import { KafkaClient } from "./kafka/client.js";
import { Progress } from "./output/progress.js";
import { type OutputFormat, toJson } from "./output/render.js";

/** Where the CLI reads and writes; a process's own streams, or test doubles. */
export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Ctrl-C; without it commands cannot be interrupted gracefully. */
  readonly interrupts?: Interrupts;
}

/** The options every command shares, resolved from flags, environment and defaults. */
export interface GlobalSettings {
  readonly brokers: readonly BrokerAddress[];
  readonly adminUrl: URL;
  readonly format: OutputFormat;
  readonly requestTimeoutMs: number;
  readonly progress: "auto" | "always" | "never";
  readonly clientId: string;
}

/** What a command prints when it finishes: `data` for --format json, `text` for people. */
export interface CommandResult {
  readonly data: unknown;
  readonly text: string;
  /** Non-zero when the command ran but what it reports is a failure (e.g. a node not ready). */
  readonly exitCode?: number;
}

/**
 * Everything a command needs: settings, lazily opened clients (closed when the command ends), the
 * progress display, and an abort signal raised by Ctrl-C.
 */
export class CommandContext {
  private kafkaClient: Promise<KafkaClient> | undefined;
  private aborter: AbortController | undefined;

  constructor(
    readonly io: CliIo,
    readonly settings: GlobalSettings,
  ) {}

  /**
   * Raised on the first Ctrl-C. Asking for it is how a long-running command says it stops cleanly
   * and reports what it did; other commands are simply ended by Ctrl-C.
   */
  get signal(): AbortSignal {
    if (!this.aborter) {
      const aborter = new AbortController();
      this.aborter = aborter;
      this.io.interrupts?.onInterrupt(() => aborter.abort());
    }
    return this.aborter.signal;
  }

  get interrupted(): boolean {
    return this.aborter?.signal.aborted ?? false;
  }

  kafka(): Promise<KafkaClient> {
    this.kafkaClient ??= KafkaClient.connect(this.settings.brokers, {
      clientId: this.settings.clientId,
      requestTimeoutMs: this.settings.requestTimeoutMs,
      connectTimeoutMs: Math.min(this.settings.requestTimeoutMs, 10_000),
    });
    return this.kafkaClient;
  }

  admin(): AdminClient {
    return new AdminClient(this.settings.adminUrl, this.settings.requestTimeoutMs);
  }

  progress(): Progress {
    return new Progress({ stream: this.io.stderr, mode: this.settings.progress });
  }

  print(result: CommandResult): void {
    const text = this.settings.format === "json" ? toJson(result.data) : result.text;
    if (text !== "") this.io.stdout.write(`${text}\n`);
  }

  /** Writes a line to stderr (warnings and notes that are not the command's result). */
  note(text: string): void {
    this.io.stderr.write(`${text}\n`);
  }

  async close(): Promise<void> {
    const client = await this.kafkaClient?.catch(() => undefined);
    await client?.close();
  }
}

import { platform } from "node:os";
import { loadNativeAddon } from "@raftka/storage";

/**
 * Hands the C heap's free memory back to the system now and then. The buffers of large Produce frames and
 * Fetch reads live in malloc's heap; when the buffer pool lets them go, glibc keeps the holes they leave
 * resident. After a consumer caught up beside producers that was about 80 MiB of the broker's RSS, which
 * stayed until the process exited (docs/benchmarks.md, "Memory the C heap kept").
 */

interface NativeBinding {
  /** Bytes the RSS fell by while the heap was trimmed (malloc_trim(0), on the libuv pool). */
  trim(): Promise<number>;
  /** Bytes in malloc's free chunks, resident or already handed back (mallinfo2). */
  freeBytes(): number;
}

/** How often the heap is looked at. Trimming an already trimmed heap costs about 0.1 ms. */
const HEAP_TRIM_INTERVAL_MS = 5_000;
/** Free heap below this is ordinary churn, reused within moments; trimming it would only cost page faults. */
const HEAP_TRIM_MIN_FREE_BYTES = 16 * 1024 * 1024;

/** Asked only when the addon did not load: a process report takes several milliseconds to build. */
function isGlibc(): boolean {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime !== undefined;
}

const native: { binding?: NativeBinding; missing?: string } =
  platform() === "linux"
    ? loadNativeAddon<NativeBinding>(
        import.meta.url,
        "../../build/heap-trim.node",
        "packages/broker/build/heap-trim.node",
      )
    : {};

/** malloc_trim is glibc's; elsewhere the addon is not built (scripts/build-native.mjs). */
export const heapTrimAvailableOnThisPlatform =
  native.binding !== undefined || (platform() === "linux" && isGlibc());
const missing = heapTrimAvailableOnThisPlatform
  ? native.missing
  : "freed heap memory is handed back with glibc's malloc_trim, and this node has no glibc";

export interface HeapTrimmerOptions {
  intervalMs?: number;
  minFreeBytes?: number;
  /** Called after each trim with the bytes the RSS fell by. */
  onTrimmed?: (releasedBytes: number) => void;
}

/** Every `intervalMs`, trims the heap if at least `minFreeBytes` of it is free. Does nothing where it cannot. */
export class HeapTrimmer {
  /** Why the heap is never trimmed on this node; undefined where it is. */
  static readonly unavailableReason: string | undefined = missing;
  private readonly timer: NodeJS.Timeout | undefined;
  private trimming = false;

  constructor(private readonly options: HeapTrimmerOptions = {}) {
    if (native.binding === undefined) return;
    // A trim that could not start (no memory for its bookkeeping) is skipped; the next interval tries again.
    this.timer = setInterval(
      () => this.trimIfWorthIt().catch(() => {}),
      options.intervalMs ?? HEAP_TRIM_INTERVAL_MS,
    );
    this.timer.unref();
  }

  /** Trims now if enough of the heap is free and no trim is running; resolves with the bytes released. */
  async trimIfWorthIt(): Promise<number> {
    const binding = native.binding;
    if (binding === undefined || this.trimming) return 0;
    if (binding.freeBytes() < (this.options.minFreeBytes ?? HEAP_TRIM_MIN_FREE_BYTES)) return 0;
    this.trimming = true;
    try {
      const released = await binding.trim();
      this.options.onTrimmed?.(released);
      return released;
    } finally {
      this.trimming = false;
    }
  }

  close(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }
}

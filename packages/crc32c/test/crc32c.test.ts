import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import nodeRs from "@node-rs/crc32";
import { describe, expect, it } from "vitest";
import { crc32c, crc32cFolds, crc32cImplementation, crc32cThreeStreams } from "../src/index.js";

describe("crc32c", () => {
  it("gives the check value and the RFC 3720 (iSCSI) test vectors", () => {
    expect(crc32c(Buffer.from("123456789"))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(32, 0))).toBe(0x8a9136aa);
    expect(crc32c(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
    expect(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => i)))).toBe(0x46dd794e);
    expect(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i)))).toBe(0x113fdb5c);
    expect(crc32c(Buffer.alloc(0))).toBe(0);
  });

  it("agrees with @node-rs/crc32 around every block boundary, at any alignment and from any previous CRC", () => {
    // Runs of 8192 and 256 bytes go three at a time: 24,576 and 768 bytes, then 8 bytes, then single bytes.
    const sizes = [
      1, 7, 8, 9, 255, 767, 768, 769, 775, 1536, 24_575, 24_576, 24_577, 25_344, 49_152, 100_003, 1_048_576,
    ];
    const source = randomBytes(1_048_576 + 64);
    for (const size of sizes) {
      for (const offset of [0, 1, 3, 8, 13]) {
        const data = source.subarray(offset, offset + size);
        const previous = randomBytes(4).readUInt32BE(0);
        expect(crc32c(data), `size ${size} at offset ${offset}`).toBe(nodeRs.crc32c(data) >>> 0);
        expect(crc32c(data, previous)).toBe(nodeRs.crc32c(data, previous) >>> 0);
      }
    }
  });

  it("folds long inputs to the same CRC as three streams and @node-rs/crc32, around every fold boundary", () => {
    // Folding takes 1 KiB and more, 256 bytes at a time after the first 256, and leaves the rest to the streams.
    const sizes = [1023, 1024, 1025, 1279, 1280, 1281, 1535, 4096, 4097 + 255, 16_384 + 17, 24_576, 100_003];
    sizes.push(1_048_576);
    const source = randomBytes(1_048_576 + 64);
    for (const size of sizes) {
      for (const offset of [0, 1, 5, 8, 63]) {
        const data = source.subarray(offset, offset + size);
        const previous = randomBytes(4).readUInt32BE(0);
        const expected = nodeRs.crc32c(data, previous) >>> 0;
        expect(crc32c(data, previous), `size ${size} at offset ${offset}`).toBe(expected);
        if (crc32cThreeStreams) expect(crc32cThreeStreams(data, previous)).toBe(expected);
      }
    }
    // All zeros and all ones: no luck in random data hides a wrong constant.
    for (const fill of [0x00, 0xff]) {
      const data = Buffer.alloc(5000, fill);
      expect(crc32c(data)).toBe(nodeRs.crc32c(data) >>> 0);
    }
  });

  it("folds wherever the CPU has AVX-512 carry-less multiplication", () => {
    const flags =
      process.arch === "x64"
        ? (/^flags\s*:(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "")
        : "";
    const has = (flag: string) => new RegExp(`\\b${flag}\\b`).test(flags);
    const canFold = ["sse4_2", "avx512f", "avx512vl", "vpclmulqdq", "pclmulqdq"].every(has);
    expect(crc32cFolds).toBe(canFold && crc32cImplementation === "native-sse4.2");
  });

  it("continues a CRC over the next bytes as if they had come in one piece", () => {
    const data = randomBytes(70_000);
    for (const cut of [0, 1, 1000, 24_576, 69_999, 70_000]) {
      expect(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut)))).toBe(crc32c(data));
    }
  });

  it("reads a typed array's bytes, not its elements, and refuses what is not bytes", () => {
    const bytes = randomBytes(4096);
    expect(crc32c(new Uint8Array(bytes.buffer, bytes.byteOffset + 16, 100))).toBe(
      crc32c(bytes.subarray(16, 116)),
    );
    if (crc32cImplementation === "native-sse4.2") {
      expect(() => crc32c("123456789" as unknown as Uint8Array)).toThrow(TypeError);
      expect(() => crc32c(new Uint32Array(4) as unknown as Uint8Array)).toThrow(TypeError);
    }
  });

  it("is the native build wherever the CPU has SSE 4.2 (pnpm build compiles it; a failed build fails here)", () => {
    const sse42 =
      process.arch === "x64" && /^flags\s*:.*\bsse4_2\b/m.test(readFileSync("/proc/cpuinfo", "utf8"));
    expect(crc32cImplementation).toBe(sse42 ? "native-sse4.2" : "@node-rs/crc32");
  });

  it("falls back to @node-rs/crc32 with RAFTKA_CRC32C_NATIVE=false, with the same results", () => {
    const script = `import("${new URL("../dist/index.js", import.meta.url).href}").then(m => console.log(m.crc32cImplementation, m.crc32c(Buffer.from("123456789"))))`;
    const output = execFileSync(process.execPath, ["-e", script], {
      env: { ...process.env, RAFTKA_CRC32C_NATIVE: "false" },
      encoding: "utf8",
    });
    expect(output.trim()).toBe(`@node-rs/crc32 ${0xe3069283}`);
  });
});

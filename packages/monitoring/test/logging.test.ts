import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLoggingFromConfig, Logging, loadConfig } from "../src/index.js";

/** A real stream that keeps what was written, split into lines. */
class LineSink extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
    done();
  }
  json(): Record<string, unknown>[] {
    return this.lines.map((line) => JSON.parse(line));
  }
}

describe("logging", () => {
  it("writes one JSON object per line with the component, level name and bindings", () => {
    const sink = new LineSink();
    const logging = new Logging({ level: "info", destination: sink, bindings: { node: 3 } });
    logging.component("raft").info({ partition: 7 }, "became leader");
    logging.component("storage").debug("hidden at info");
    const [line, ...rest] = sink.json();
    expect(rest).toEqual([]);
    expect(line).toMatchObject({
      level: "info",
      component: "raft",
      node: 3,
      partition: 7,
      msg: "became leader",
    });
    expect(typeof line!.time).toBe("string");
  });

  it("gives each component its own level, changeable while running", () => {
    const sink = new LineSink();
    const logging = new Logging({ level: "warn", componentLevels: { raft: "debug" }, destination: sink });
    const raft = logging.component("raft");
    const group = logging.component("group");
    raft.debug("raft debug");
    group.info("group info (hidden)");
    logging.setLevel("group", "info");
    group.info("group info");
    logging.setLevel("raft", null);
    raft.debug("raft debug (hidden: follows warn again)");
    logging.setRootLevel("debug");
    raft.debug("raft debug after root change");
    expect(sink.json().map((line) => line.msg)).toEqual([
      "raft debug",
      "group info",
      "raft debug after root change",
    ]);
    expect(logging.levels().components.group).toEqual({ level: "info", overridden: true });
    expect(logging.levels().components.raft).toEqual({ level: "debug", overridden: false });
  });

  it("follows log.level and log.level.<component> from the config, including run-time updates", () => {
    const sink = new LineSink();
    const config = loadConfig({ argv: ["--log.level=error", "--log.level.controller=info"] });
    const logging = createLoggingFromConfig(config, { destination: sink });
    logging.component("controller").info("controller info");
    logging.component("server").warn("server warn (hidden)");
    expect(config.update({ "log.level.server": "warn" })).toEqual([]);
    logging.component("server").warn("server warn");
    expect(sink.json().map((line) => [line.component, line.msg, line.node])).toEqual([
      ["controller", "controller info", 0],
      ["server", "server warn", 0],
    ]);
  });

  it("writes human-readable lines with log.format=pretty", () => {
    const sink = new LineSink();
    const logging = new Logging({ level: "info", format: "pretty", destination: sink });
    logging.component("admin").info("listening on :9644");
    const output = sink.lines.join("\n");
    expect(output).toContain("INFO");
    expect(output).toContain("listening on :9644");
    expect(output).toContain('component: "admin"');
    expect(() => JSON.parse(sink.lines[0]!)).toThrow();
  });

  it("refuses unknown levels and components with the allowed values", () => {
    const logging = new Logging({ level: "info", destination: new LineSink() });
    expect(() => logging.setRootLevel("loud" as never)).toThrow(
      /unknown log level "loud"; use one of trace, debug/,
    );
    expect(() => logging.setLevel("network" as never, "info")).toThrow(/unknown log component "network"/);
  });
});

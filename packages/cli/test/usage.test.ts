import { describe, expect, it } from "vitest";
import { cleanEnvironment, runRaftka } from "./run-cli.js";

describe("raftka command line", () => {
  it("prints help with the exit codes, exit 0", async () => {
    const run = await runRaftka(["--help"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("Usage: raftka");
    expect(run.stdout).toContain("2 usage error, 3 cannot reach the broker");
  });

  it("prints help for `raftka help` and `raftka help <command>` too, exit 0", async () => {
    const general = await runRaftka(["help"]);
    expect(general.code).toBe(0);
    expect(general.stdout).toContain("Usage: raftka");
    const topic = await runRaftka(["help", "topic"]);
    expect(topic.code).toBe(0);
    expect(topic.stdout).toContain("Usage: raftka topic");
  });

  it("says that `start` comes first when client options precede it, exit 2", async () => {
    const run = await runRaftka(["--brokers", "127.0.0.1:1", "start"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("`raftka start` must come first, with its settings after it");
  });

  it("exits 2 for an unknown command, suggesting the right one", async () => {
    const run = await runRaftka(["topic", "lst"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("unknown command 'lst'");
    expect(run.stderr).toContain("list");
  });

  it("exits 2 for invalid option values, naming the option and what is allowed", async () => {
    const partitions = await runRaftka(["topic", "create", "t", "--partitions", "zero"]);
    expect(partitions.code).toBe(2);
    expect(partitions.stderr).toContain(
      '--partitions "zero" is not valid; use a whole number from 1 to 2147483647',
    );
    // Beyond what the wire format carries (INT32 partitions, INT16 replicas): refused, not a crash.
    const tooMany = await runRaftka(["topic", "create", "t", "--partitions", "99999999999"]);
    expect(tooMany.code).toBe(2);
    expect(tooMany.stderr).toContain("use a whole number from 1 to 2147483647");
    const replicas = await runRaftka(["topic", "create", "t", "--replicas", "40000"]);
    expect(replicas.code).toBe(2);
    expect(replicas.stderr).toContain("use a whole number from 1 to 32767");
    const header = await runRaftka(["topic", "produce", "t", "-v", "x", "-H", "bad"]);
    expect(header.code).toBe(2);
    expect(header.stderr).toContain('--header "bad" is not key=value; write it like --header source=billing');
    const noTime = await runRaftka(["topic", "list", "--timeout", "0"]);
    expect(noTime.code).toBe(2);
    expect(noTime.stderr).toContain('--timeout "0" leaves no time for a request');
    const format = await runRaftka(["topic", "list", "--format", "yaml"]);
    expect(format.code).toBe(2);
    expect(format.stderr).toContain("yaml");
    expect(format.stderr).toContain("table, json");
  });

  it("heads `raftka start`'s configuration problems once, exit 2", async () => {
    const run = await runRaftka(["start", "--log.segment.bytes=12abc"]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^raftka start: invalid configuration \(1 problem; /);
    expect(run.stderr.split("invalid configuration")).toHaveLength(2);
  });

  it("exits 3 when no broker answers, naming the addresses and how to point elsewhere", async () => {
    const run = await runRaftka(["topic", "list", "--brokers", "127.0.0.1:1"]);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain("cannot reach any broker of 127.0.0.1:1");
    expect(run.stderr).toContain("--brokers / RAFTKA_BROKERS");
  });

  it("takes the brokers from RAFTKA_BROKERS, and a bad value there is a usage error naming it", async () => {
    const unreachable = await runRaftka(["topic", "list"], {
      env: cleanEnvironment({ RAFTKA_BROKERS: "127.0.0.1:1" }),
    });
    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr).toContain("127.0.0.1:1");
    const malformed = await runRaftka(["topic", "list"], {
      env: cleanEnvironment({ RAFTKA_BROKERS: "a:b:c" }),
    });
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain('RAFTKA_BROKERS entry "a:b:c" is not host:port');
  });
});

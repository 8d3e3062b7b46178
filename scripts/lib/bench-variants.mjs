// What the comparing benchmarks (scripts/bench/produce-cost.mjs, catch-up.mjs) share: a variant of the
// broker given on the command line, and the CPU time a process has used.
import { readFile } from "node:fs/promises";
import { brokerProcessSettings } from "./broker-process.mjs";

/**
 * NAME[:key=value,...][@/other/checkout][+node-flag ...]: broker settings (`env.NAME=value` sets its
 * environment), another built checkout, and Node flags instead of the checkout's own (`+` alone: none).
 */
export async function parseVariant(text, repository) {
  let rest = text;
  let nodeFlags;
  const plus = rest.indexOf("+");
  if (plus >= 0) {
    nodeFlags = rest
      .slice(plus + 1)
      .split(" ")
      .filter(Boolean);
    rest = rest.slice(0, plus);
  }
  let checkout = repository;
  const at = rest.indexOf("@");
  if (at >= 0) {
    checkout = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  const [name, settingsText = ""] = rest.split(":");
  const entries = settingsText.split(",").filter(Boolean);
  const settings = entries.filter((entry) => !entry.startsWith("env."));
  const environment = Object.fromEntries(
    entries
      .filter((entry) => entry.startsWith("env."))
      .map((entry) => {
        const equals = entry.indexOf("=");
        return [entry.slice("env.".length, equals), entry.slice(equals + 1)];
      }),
  );
  // The checkout's own V8 flags and environment (GLIBC_TUNABLES) for its broker, where it has them.
  const own = await brokerProcessSettings(checkout);
  nodeFlags ??= own.nodeFlags;
  return { name, settings, environment: { ...own.environment(), ...environment }, checkout, nodeFlags };
}

/** User and system CPU seconds process `pid` has used, all its threads (/proc). */
export async function cpuSeconds(pid) {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

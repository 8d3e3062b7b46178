import { Command, CommanderError, Option } from "commander";
import { DEFAULT_ADMIN_URL, parseAdminUrl } from "./admin/admin-client.js";
import { clusterHealth, clusterLogLevel, clusterMetadata, clusterStatus } from "./commands/cluster.js";
import { topicConsume } from "./commands/consume.js";
import { groupDelete, groupDescribe, groupList, groupSeek } from "./commands/group.js";
import { topicProduce } from "./commands/produce.js";
import { topicAlterConfig, topicCreate, topicDelete, topicDescribe, topicList } from "./commands/topic.js";
import { type CliIo, CommandContext, type CommandResult, type GlobalSettings } from "./context.js";
import { parseDuration } from "./duration.js";
import { CliError, ExitCode, UsageError } from "./errors.js";
import { parseBrokerList } from "./kafka/addresses.js";
import { collect, parseIntegerOption } from "./options.js";
import { type OutputFormat, outputFormats } from "./output/render.js";
import { cliVersion } from "./version.js";

export const BROKERS_VARIABLE = "RAFTKA_BROKERS";
export const ADMIN_URL_VARIABLE = "RAFTKA_ADMIN_URL";

interface GlobalFlags {
  brokers?: string;
  adminUrl?: string;
  format: OutputFormat;
  timeout: string;
  progress?: boolean;
  clientId: string;
}

function resolveSettings(flags: GlobalFlags, env: CliIo["env"]): GlobalSettings {
  const brokers =
    flags.brokers !== undefined
      ? parseBrokerList(flags.brokers, "--brokers")
      : env[BROKERS_VARIABLE]
        ? parseBrokerList(env[BROKERS_VARIABLE]!, BROKERS_VARIABLE)
        : parseBrokerList("localhost:9092", "the default broker");
  const adminUrl =
    flags.adminUrl !== undefined
      ? parseAdminUrl(flags.adminUrl, "--admin-url")
      : env[ADMIN_URL_VARIABLE]
        ? parseAdminUrl(env[ADMIN_URL_VARIABLE]!, ADMIN_URL_VARIABLE)
        : parseAdminUrl(DEFAULT_ADMIN_URL, "the default admin URL");
  return {
    brokers,
    adminUrl,
    format: flags.format,
    requestTimeoutMs: positiveTimeout(flags.timeout),
    progress: flags.progress === true ? "always" : flags.progress === false ? "never" : "auto",
    clientId: flags.clientId,
  };
}

const integer =
  (option: string, min: number, max = Number.MAX_SAFE_INTEGER) =>
  (text: string) =>
    parseIntegerOption(text, option, min, max);
/** --timeout: no request can be answered in no time, so 0 is a usage error rather than a certain timeout. */
function positiveTimeout(text: string): number {
  const milliseconds = parseDuration(text, "--timeout");
  if (milliseconds < 1)
    throw new UsageError(`--timeout "${text}" leaves no time for a request; give at least 1ms (e.g. 30s)`);
  return milliseconds;
}

/** The widths Kafka's wire format gives them: partition counts and numbers are INT32, replicas INT16. */
const INT32_MAX = 2_147_483_647;
const INT16_MAX = 32_767;

/**
 * Runs one `raftka` command line and resolves with its exit code (see ExitCode); never throws and
 * never calls process.exit, so it can run inside tests and inside `main.ts` alike.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let exitCode: number = ExitCode.ok;

  const program = new Command("raftka");
  program
    .description(
      "Run and operate Raftka, a Kafka-compatible broker: topics, consumer groups and cluster health, over the Kafka protocol (--brokers) and the admin HTTP API (--admin-url).",
    )
    .version(cliVersion, "-V, --version", "print the version")
    .helpOption("-h, --help", "show help for a command")
    .option(
      "--brokers <host:port,...>",
      `Kafka brokers to bootstrap from (env ${BROKERS_VARIABLE}; default localhost:9092)`,
    )
    .option(
      "--admin-url <url>",
      `a node's admin HTTP API (env ${ADMIN_URL_VARIABLE}; default ${DEFAULT_ADMIN_URL})`,
    )
    .addOption(
      new Option("--format <format>", "table for people, json for scripts")
        .choices(outputFormats)
        .default("table"),
    )
    .option("--timeout <duration>", "time allowed for each request (500ms, 30s, 2m)", "30s")
    .option("--progress", "show progress on stderr even when it is not a terminal")
    .option("--no-progress", "never show progress")
    .option("--client-id <id>", "client id sent to brokers", "raftka-cli")
    .exitOverride()
    .showHelpAfterError("(add --help for usage)")
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      outputError: (text, write) => write(`raftka: ${text.replace(/^error: /, "error: ")}`),
    })
    .addHelpText(
      "after",
      "\nExit codes: 0 ok, 1 operation failed or node not healthy, 2 usage error, 3 cannot reach the broker\nor admin API, 130 interrupted. Full reference: docs/operations.md",
    );

  const run =
    <A extends unknown[]>(
      handler: (context: CommandContext, ...args: A) => Promise<CommandResult | undefined>,
    ) =>
    async (...args: unknown[]) => {
      const command = args.at(-1) as Command;
      const context = new CommandContext(io, resolveSettings(command.optsWithGlobals<GlobalFlags>(), io.env));
      try {
        const result = await handler(context, ...(args.slice(0, -1) as A));
        if (result) {
          context.print(result);
          exitCode = result.exitCode ?? ExitCode.ok;
        }
        if (context.interrupted && exitCode === ExitCode.ok) exitCode = ExitCode.interrupted;
      } finally {
        await context.close();
      }
    };

  program
    .command("start")
    .description(
      "start a broker node (settings: --key=value flags, RAFTKA_* variables, --config file; see docs/configuration.md)",
    )
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .action(() => {
      // main.ts hands `start` to the broker before this parser runs when it comes first; reaching here
      // means options came before it (or the CLI runs embedded, without main.ts).
      throw new CliError(
        ExitCode.usage,
        "`raftka start` must come first, with its settings after it (`raftka start --log.dirs=/data`): the client options (--brokers, --format, --timeout) do not apply to a node",
      );
    });

  const topic = program
    .command("topic")
    .description("create, inspect, change and delete topics; produce and consume records");
  topic
    .command("list")
    .alias("ls")
    .description("list topics with their partition and replica counts")
    .option("-i, --internal", "include internal topics (__consumer_offsets, ...)")
    .action(run((context, options: { internal?: boolean }) => topicList(context, options)));
  topic
    .command("describe")
    .description("show a topic's partitions (leader, replicas, ISR, offsets) and configuration")
    .argument("<topics...>", "topic names")
    .option(
      "-a, --all-configs",
      "show every configuration value, not just the ones that differ from the default",
    )
    .action(
      run((context, names: string[], options: { allConfigs?: boolean }) =>
        topicDescribe(context, names, options),
      ),
    );
  topic
    .command("create")
    .description("create topics (answers once they accept produce and fetch)")
    .argument("<topics...>", "topic names")
    .option(
      "-p, --partitions <n>",
      "number of partitions (default: the broker's num.partitions)",
      integer("--partitions", 1, INT32_MAX),
    )
    .option(
      "-r, --replicas <n>",
      "replication factor (default: the broker's default.replication.factor)",
      integer("--replicas", 1, INT16_MAX),
    )
    .option("-c, --config <key=value>", "topic setting, repeatable (e.g. -c retention.ms=86400000)", collect)
    .option("--if-not-exists", "succeed when the topic already exists")
    .option("--validate-only", "ask the broker to check the request without creating anything")
    .action(
      run((context, names: string[], options: Parameters<typeof topicCreate>[2]) =>
        topicCreate(context, names, options),
      ),
    );
  topic
    .command("delete")
    .alias("rm")
    .description("delete topics and all their records")
    .argument("<topics...>", "topic names")
    .option("--if-exists", "succeed when a topic does not exist")
    .action(
      run((context, names: string[], options: { ifExists?: boolean }) =>
        topicDelete(context, names, options),
      ),
    );
  topic
    .command("alter-config")
    .description("set or remove topic settings (IncrementalAlterConfigs)")
    .argument("<topic>", "topic name")
    .option("-s, --set <key=value>", "set a setting, repeatable", collect)
    .option("-d, --delete <key>", "remove a setting so the broker default applies again, repeatable", collect)
    .option("--dry-run", "validate only; change nothing")
    .action(
      run((context, name: string, options: Parameters<typeof topicAlterConfig>[2]) =>
        topicAlterConfig(context, name, options),
      ),
    );
  topic
    .command("produce")
    .description("produce records: one per line of standard input, or the --value options")
    .argument("<topic>", "topic name")
    .option("-v, --value <value>", "a record value instead of reading stdin, repeatable", collect)
    .option("-k, --key <key>", "key of every record (default: none)")
    .option("-K, --key-separator <text>", "read each line as key<text>value")
    .option("-H, --header <key=value>", "record header, repeatable", collect)
    .option(
      "-p, --partition <n>",
      "produce to this partition (default: by key hash; records without a key go to one partition per batch, starting at a random one)",
      integer("--partition", 0, INT32_MAX),
    )
    .addOption(
      new Option("-a, --acks <acks>", "acknowledgement to wait for")
        .choices(["all", "1", "0"])
        .default("all"),
    )
    .addOption(
      new Option("-z, --compression <codec>", "compression of the record batches")
        .choices(["none", "gzip", "snappy", "lz4", "zstd"])
        .default("none"),
    )
    .option("--batch-records <n>", "most records per batch", integer("--batch-records", 1, INT32_MAX), 1000)
    .option("--wait-for-topic <duration>", "wait up to this long for the topic to exist")
    .action(
      run((context, name: string, options: Parameters<typeof topicProduce>[2]) =>
        topicProduce(context, name, options),
      ),
    );
  topic
    .command("consume")
    .description("print records, one per line (--format json: one JSON object per line)")
    .argument("<topic>", "topic name")
    .option("-p, --partition <n,...>", "only these partitions (default: all), repeatable", collect)
    .option(
      "-o, --offset <where>",
      "start at beginning, end, an offset, -N (N before the end) or @<ms since epoch> (default: beginning, or the group's committed offsets)",
    )
    .option("-n, --num <n>", "stop after this many records", integer("--num", 1))
    .option("-e, --exit-at-end", "stop once every partition is read up to its end at start")
    .option(
      "-g, --group <group>",
      "read from and commit offsets for this consumer group (no group membership)",
    )
    .option("-K, --print-key <separator>", "print key<separator>value instead of the value only")
    .option("--wait-for-topic <duration>", "wait up to this long for the topic to exist")
    .action(
      run((context, name: string, options: Parameters<typeof topicConsume>[2]) =>
        topicConsume(context, name, options),
      ),
    );

  const group = program.command("group").description("inspect and manage consumer groups");
  group
    .command("list")
    .alias("ls")
    .description("list consumer groups and their states")
    .action(run((context) => groupList(context)));
  group
    .command("describe")
    .description("show a group's members and its committed offsets and lag per partition")
    .argument("<groups...>", "group ids")
    .action(run((context, names: string[]) => groupDescribe(context, names)));
  group
    .command("delete")
    .alias("rm")
    .description("delete groups that have no members, with their committed offsets")
    .argument("<groups...>", "group ids")
    .action(run((context, names: string[]) => groupDelete(context, names)));
  group
    .command("seek")
    .description("move a group's committed offsets (the group must have no active members)")
    .argument("<group>", "group id")
    .requiredOption("--to <where>", "beginning, end, an offset, or @<ms since epoch>")
    .option(
      "-t, --topic <topic>",
      "only this topic, repeatable (default: every topic the group has offsets for)",
      collect,
    )
    .option("-p, --partition <n,...>", "only these partitions (needs one --topic), repeatable", collect)
    .option("--dry-run", "show what would change without committing")
    .action(
      run((context, name: string, options: Parameters<typeof groupSeek>[2]) =>
        groupSeek(context, name, options),
      ),
    );

  const cluster = program
    .command("cluster")
    .description("cluster-wide information, node health, status and log levels");
  cluster
    .command("metadata")
    .description("the cluster id, controller and brokers, as Kafka clients see them")
    .action(run((context) => clusterMetadata(context)));
  cluster
    .command("health")
    .description("a node's readiness and what is not ready (exit 1 when not ready)")
    .option("-w, --wait <duration>", "wait up to this long for the node to become ready")
    .action(
      run((context, options: { wait?: string }) =>
        clusterHealth(
          context,
          options.wait === undefined ? {} : { waitMs: parseDuration(options.wait, "--wait") },
        ),
      ),
    );
  cluster
    .command("status")
    .description("a node's id, version, uptime, listeners, partitions and leaders")
    .action(run((context) => clusterStatus(context)));
  cluster
    .command("log-level")
    .description(
      "show a node's log levels, or set one at run time: log-level <component|root> <level|default>",
    )
    .argument("[component]", "root, or a component: server, storage, raft, controller, group, admin")
    .argument("[level]", "trace, debug, info, warn, error, fatal, silent, or default (follow the root level)")
    .action(run((context, component?: string, level?: string) => clusterLogLevel(context, component, level)));

  try {
    await program.parseAsync([...argv], { from: "user" });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // `--help`, `raftka help [command]` and `--version`: what was asked for was printed.
      if (["commander.helpDisplayed", "commander.help", "commander.version"].includes(error.code))
        return ExitCode.ok;
      return ExitCode.usage;
    }
    if (error instanceof CliError) {
      io.stderr.write(`raftka: error: ${error.message}\n`);
      return error.exitCode;
    }
    io.stderr.write(
      `raftka: error: ${(error as Error)?.stack ?? String(error)}\nThis is a bug in the raftka CLI; please report it with the command line that caused it.\n`,
    );
    return ExitCode.failed;
  }
}

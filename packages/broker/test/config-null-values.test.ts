import { ApiKey, ErrorCode, type KafkaConnection } from "@raftka/protocol";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTopic, startTestBroker, type TestBroker } from "./helpers.js";

// Kafka refuses a config whose value is null (other than IncrementalAlterConfigs' DELETE) instead of reading
// it as "remove the override": a client that sends null by mistake must not lose a setting silently.

let node: TestBroker;
let connection: KafkaConnection;

beforeAll(async () => {
  node = await startTestBroker();
  connection = await node.connect();
});
afterAll(async () => {
  await node.cleanup();
});

const TOPIC = 2;
const BROKER = 4;
const BROKER_LOGGER = 8;
const SET = 0;
const DELETE = 1;
const APPEND = 2;

interface IncrementalResource {
  resourceType: number;
  resourceName: string;
  configs: { name: string; configOperation: number; value: string | null }[];
}

interface LegacyResource {
  resourceType: number;
  resourceName: string;
  configs: { name: string; value: string | null }[];
}

const incremental = async (resources: IncrementalResource[], validateOnly = false) =>
  (await connection.send(ApiKey.IncrementalAlterConfigs, 1, { validateOnly, resources })).responses;

const legacy = async (resources: LegacyResource[], validateOnly = false) =>
  (await connection.send(ApiKey.AlterConfigs, 2, { validateOnly, resources })).responses;

/** name → [value, configSource] of the listed keys (source 1 is the topic's own override). */
async function described(resourceType: number, resourceName: string, keys: string[]) {
  const response = await connection.send(ApiKey.DescribeConfigs, 4, {
    resources: [{ resourceType, resourceName, configurationKeys: keys }],
    includeSynonyms: false,
    includeDocumentation: false,
  });
  const result = response.results[0]!;
  expect(result.errorCode).toBe(ErrorCode.NONE);
  return Object.fromEntries(
    result.configs.map((config) => [config.name, [config.value, config.configSource]]),
  );
}

const outcome = (response: { errorCode: number; errorMessage: string | null }) => [
  response.errorCode,
  response.errorMessage,
];

describe("IncrementalAlterConfigs with a null value", () => {
  it("refuses SET null on a topic with INVALID_REQUEST and keeps its override, while another resource's change applies", async () => {
    await createTopic(connection, "inc-null", 1, { "retention.ms": "60000" });
    await createTopic(connection, "inc-other");
    const responses = await incremental([
      {
        resourceType: TOPIC,
        resourceName: "inc-null",
        configs: [
          { name: "segment.bytes", configOperation: SET, value: "2097152" },
          { name: "retention.ms", configOperation: SET, value: null },
        ],
      },
      {
        resourceType: TOPIC,
        resourceName: "inc-other",
        configs: [{ name: "retention.ms", configOperation: SET, value: "120000" }],
      },
    ]);
    expect(responses.map(outcome)).toEqual([
      [ErrorCode.INVALID_REQUEST, "Null value not supported for : retention.ms"],
      [ErrorCode.NONE, null],
    ]);
    // Nothing of the refused resource changed, not even its valid entry.
    expect(await described(TOPIC, "inc-null", ["retention.ms", "segment.bytes"])).toEqual({
      "retention.ms": ["60000", 1],
      "segment.bytes": ["1073741824", 5],
    });
    expect(await described(TOPIC, "inc-other", ["retention.ms"])).toEqual({ "retention.ms": ["120000", 1] });
  });

  it("answers validateOnly the same, names every null (APPEND too), and still takes DELETE with null", async () => {
    await createTopic(connection, "inc-validate", 1, { "retention.ms": "60000" });
    const nulls: IncrementalResource = {
      resourceType: TOPIC,
      resourceName: "inc-validate",
      configs: [
        { name: "retention.ms", configOperation: SET, value: null },
        { name: "cleanup.policy", configOperation: APPEND, value: null },
      ],
    };
    const refused = [
      ErrorCode.INVALID_REQUEST,
      "Null value not supported for : retention.ms, cleanup.policy",
    ];
    expect((await incremental([nulls], true)).map(outcome)).toEqual([refused]);
    expect((await incremental([nulls])).map(outcome)).toEqual([refused]);
    expect(await described(TOPIC, "inc-validate", ["retention.ms", "cleanup.policy"])).toEqual({
      "retention.ms": ["60000", 1],
      "cleanup.policy": ["delete", 5],
    });

    const deleted = await incremental([
      {
        resourceType: TOPIC,
        resourceName: "inc-validate",
        configs: [{ name: "retention.ms", configOperation: DELETE, value: null }],
      },
    ]);
    expect(deleted.map(outcome)).toEqual([[ErrorCode.NONE, null]]);
    expect(await described(TOPIC, "inc-validate", ["retention.ms"])).toEqual({
      "retention.ms": ["604800000", 5],
    });
  });

  it("checks the null before the resource, as Kafka's broker does before the controller sees it", async () => {
    const responses = await incremental([
      {
        resourceType: TOPIC,
        resourceName: "inc-never-created",
        configs: [{ name: "retention.ms", configOperation: SET, value: null }],
      },
      {
        resourceType: BROKER_LOGGER,
        resourceName: "0",
        configs: [{ name: "root", configOperation: SET, value: null }],
      },
    ]);
    expect(responses.map(outcome)).toEqual([
      [ErrorCode.INVALID_REQUEST, "Null value not supported for : retention.ms"],
      [ErrorCode.INVALID_REQUEST, "Null value not supported for : root"],
    ]);
  });

  it("refuses SET null on a broker resource and keeps the broker override", async () => {
    const set = (resourceName: string, value: string | null, validateOnly = false) =>
      incremental(
        [
          {
            resourceType: BROKER,
            resourceName,
            configs: [{ name: "log.retention.ms", configOperation: SET, value }],
          },
        ],
        validateOnly,
      );
    const remove = (resourceName: string) =>
      incremental([
        {
          resourceType: BROKER,
          resourceName,
          configs: [{ name: "log.retention.ms", configOperation: DELETE, value: null }],
        },
      ]);
    try {
      expect((await set("", "7200000")).map(outcome)).toEqual([[ErrorCode.NONE, null]]);
      expect((await set("0", "3600000")).map(outcome)).toEqual([[ErrorCode.NONE, null]]);
      const refused = [[ErrorCode.INVALID_REQUEST, "Null value not supported for : log.retention.ms"]];
      for (const resourceName of ["", "0"]) {
        expect((await set(resourceName, null, true)).map(outcome)).toEqual(refused);
        expect((await set(resourceName, null)).map(outcome)).toEqual(refused);
      }
      // This node's override (source 2) still wins over the cluster default, which is kept too.
      expect(await described(BROKER, "0", ["log.retention.ms"])).toEqual({
        "log.retention.ms": ["3600000", 2],
      });
      expect(await described(BROKER, "", ["log.retention.ms"])).toEqual({
        "log.retention.ms": ["7200000", 3],
      });
    } finally {
      await remove("0");
      await remove("");
    }
  });
});

describe("AlterConfigs with a null value", () => {
  it("refuses the resource with INVALID_REQUEST and changes none of it, while another resource's change applies", async () => {
    await createTopic(connection, "legacy-null", 1, { "retention.ms": "60000" });
    await createTopic(connection, "legacy-other");
    const request = (validateOnly: boolean) =>
      legacy(
        [
          {
            resourceType: TOPIC,
            resourceName: "legacy-null",
            configs: [
              { name: "retention.ms", value: null },
              { name: "segment.bytes", value: "2097152" },
            ],
          },
          {
            resourceType: TOPIC,
            resourceName: "legacy-other",
            configs: [{ name: "retention.ms", value: "120000" }],
          },
        ],
        validateOnly,
      );
    const expected = [
      [ErrorCode.INVALID_REQUEST, "Null value not supported for : retention.ms"],
      [ErrorCode.NONE, null],
    ];
    expect((await request(true)).map(outcome)).toEqual(expected);
    expect(await described(TOPIC, "legacy-other", ["retention.ms"])).toEqual({
      "retention.ms": ["604800000", 5],
    });
    expect((await request(false)).map(outcome)).toEqual(expected);
    expect(await described(TOPIC, "legacy-null", ["retention.ms", "segment.bytes"])).toEqual({
      "retention.ms": ["60000", 1],
      "segment.bytes": ["1073741824", 5],
    });
    expect(await described(TOPIC, "legacy-other", ["retention.ms"])).toEqual({
      "retention.ms": ["120000", 1],
    });
  });

  it("refuses a null value for a broker resource and keeps the broker override", async () => {
    const alter = (configs: LegacyResource["configs"], validateOnly = false) =>
      legacy([{ resourceType: BROKER, resourceName: "0", configs }], validateOnly);
    try {
      expect((await alter([{ name: "log.retention.ms", value: "3600000" }])).map(outcome)).toEqual([
        [ErrorCode.NONE, null],
      ]);
      const nulls = [
        { name: "log.retention.ms", value: null },
        { name: "log.retention.bytes", value: null },
      ];
      const refused = [
        [ErrorCode.INVALID_REQUEST, "Null value not supported for : log.retention.ms, log.retention.bytes"],
      ];
      expect((await alter(nulls, true)).map(outcome)).toEqual(refused);
      expect((await alter(nulls)).map(outcome)).toEqual(refused);
      expect(await described(BROKER, "0", ["log.retention.ms"])).toEqual({
        "log.retention.ms": ["3600000", 2],
      });
    } finally {
      // AlterConfigs removes an override by leaving it out of the resource's set.
      await alter([]);
    }
  });
});

describe("CreateTopics with a null config value", () => {
  const create = async (
    topics: { name: string; numPartitions?: number; configs: { name: string; value: string | null }[] }[],
    validateOnly = false,
  ) =>
    (
      await connection.send(ApiKey.CreateTopics, 7, {
        topics: topics.map((topic) => ({
          name: topic.name,
          numPartitions: topic.numPartitions ?? 1,
          replicationFactor: 1,
          assignments: [],
          configs: topic.configs,
        })),
        timeoutMs: 10_000,
        validateOnly,
      })
    ).topics;

  const exists = async (name: string) => {
    const response = await connection.send(ApiKey.DescribeConfigs, 4, {
      resources: [{ resourceType: TOPIC, resourceName: name, configurationKeys: ["retention.ms"] }],
      includeSynonyms: false,
      includeDocumentation: false,
    });
    const { errorCode } = response.results[0]!;
    expect([ErrorCode.NONE, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]).toContain(errorCode);
    return errorCode === ErrorCode.NONE;
  };

  it("refuses the topic with INVALID_CONFIG and creates nothing, while another topic of the request is created", async () => {
    const request = (validateOnly: boolean) =>
      create(
        [
          {
            name: "created-with-null",
            configs: [
              { name: "retention.ms", value: null },
              { name: "segment.bytes", value: "2097152" },
              { name: "cleanup.policy", value: null },
            ],
          },
          { name: "created-beside", configs: [{ name: "retention.ms", value: "60000" }] },
        ],
        validateOnly,
      );
    const expected = [
      [
        "created-with-null",
        ErrorCode.INVALID_CONFIG,
        "Null value not supported for topic configs: retention.ms,cleanup.policy",
      ],
      ["created-beside", ErrorCode.NONE, null],
    ];
    const summary = (topics: Awaited<ReturnType<typeof create>>) =>
      topics.map((topic) => [topic.name, topic.errorCode, topic.errorMessage]);
    expect(summary(await request(true))).toEqual(expected);
    expect(await exists("created-beside")).toBe(false);
    expect(summary(await request(false))).toEqual(expected);
    expect(await exists("created-with-null")).toBe(false);
    expect(await exists("created-beside")).toBe(true);
  });

  it("checks the null before the partition count, and a later value for the name does not hide it", async () => {
    const [zeroPartitions] = await create([
      { name: "null-before-partitions", numPartitions: 0, configs: [{ name: "retention.ms", value: null }] },
    ]);
    expect([zeroPartitions!.errorCode, zeroPartitions!.errorMessage]).toEqual([
      ErrorCode.INVALID_CONFIG,
      "Null value not supported for topic configs: retention.ms",
    ]);
    const [twice] = await create([
      {
        name: "null-then-value",
        configs: [
          { name: "retention.ms", value: null },
          { name: "retention.ms", value: "60000" },
        ],
      },
    ]);
    expect(twice!.errorCode).toBe(ErrorCode.INVALID_CONFIG);
    expect(await exists("null-then-value")).toBe(false);
  });
});

describe("DescribeConfigs with an empty configurationKeys", () => {
  it("lists every config, as a null list does (Kafka's ConfigHelper treats both alike)", async () => {
    await createTopic(connection, "described-empty", 1, { "retention.ms": "60000" });
    for (const [resourceType, resourceName] of [
      [TOPIC, "described-empty"],
      [BROKER, "0"],
      [BROKER_LOGGER, "0"],
    ] as const) {
      const names = async (keys: string[] | null) => {
        const response = await connection.send(ApiKey.DescribeConfigs, 4, {
          resources: [{ resourceType, resourceName, configurationKeys: keys }],
          includeSynonyms: false,
          includeDocumentation: false,
        });
        return response.results[0]!.configs.map((config) => config.name);
      };
      const all = await names(null);
      expect(all.length).toBeGreaterThan(1);
      expect(await names([])).toEqual(all);
    }
  });
});

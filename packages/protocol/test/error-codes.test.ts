import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { allErrors, ErrorCode, errorInfo, errorName, isRetriable, KafkaError } from "../src/index.js";

const require = createRequire(import.meta.url);

describe("ErrorCode", () => {
  it("has Kafka's names and numbers", () => {
    expect(ErrorCode.UNKNOWN_SERVER_ERROR).toBe(-1);
    expect(ErrorCode.NONE).toBe(0);
    expect(ErrorCode.OFFSET_OUT_OF_RANGE).toBe(1);
    expect(ErrorCode.CORRUPT_MESSAGE).toBe(2);
    expect(ErrorCode.NOT_LEADER_OR_FOLLOWER).toBe(6);
    expect(ErrorCode.UNSUPPORTED_VERSION).toBe(35);
    expect(ErrorCode.INVALID_REQUEST).toBe(42);
    expect(ErrorCode.MEMBER_ID_REQUIRED).toBe(79);
    expect(ErrorCode.UNKNOWN_TOPIC_ID).toBe(100);
    expect(ErrorCode.SHARE_SESSION_LIMIT_REACHED).toBe(133);
  });

  it("has one entry per code from -1 to the newest, without gaps", () => {
    const codes = allErrors().map((error) => error.code);
    expect(codes).toEqual(Array.from({ length: codes.length }, (_, i) => i - 1));
  });

  it("agrees with kafkajs on the name and retriability of every code kafkajs knows", () => {
    const { errorCodes } = require("kafkajs/src/protocol/error.js") as {
      errorCodes: { type: string; code: number; retriable: boolean }[];
    };
    // kafkajs predates the NOT_LEADER_FOR_PARTITION -> NOT_LEADER_OR_FOLLOWER rename (KIP-392) and
    // calls two codes by older names; everything else must match.
    const renamed: Record<string, string> = {
      NOT_LEADER_FOR_PARTITION: "NOT_LEADER_OR_FOLLOWER",
      GROUP_LOAD_IN_PROGRESS: "COORDINATOR_LOAD_IN_PROGRESS",
      GROUP_COORDINATOR_NOT_AVAILABLE: "COORDINATOR_NOT_AVAILABLE",
      NOT_COORDINATOR_FOR_GROUP: "NOT_COORDINATOR",
      UNKNOWN: "UNKNOWN_SERVER_ERROR",
    };
    for (const known of errorCodes) {
      const ours = errorInfo(known.code);
      expect(ours, `code ${known.code}`).toBeDefined();
      expect(ours!.name, `code ${known.code}`).toBe(renamed[known.type] ?? known.type);
    }
    const disagreements = errorCodes
      .filter((known) => known.retriable !== errorInfo(known.code)!.retriable)
      .map((known) => known.type);
    // kafkajs deliberately retries this one although Kafka's Java client does not.
    expect(disagreements).toEqual(["CONCURRENT_TRANSACTIONS"]);
  });

  it("answers retriability and names, including for codes newer than the table", () => {
    expect(isRetriable(ErrorCode.NOT_LEADER_OR_FOLLOWER)).toBe(true);
    expect(isRetriable(ErrorCode.TOPIC_AUTHORIZATION_FAILED)).toBe(false);
    expect(errorName(3)).toBe("UNKNOWN_TOPIC_OR_PARTITION");
    expect(errorName(9999)).toBe("UNKNOWN_ERROR_CODE(9999)");
    expect(isRetriable(9999)).toBe(false);
  });
});

describe("KafkaError", () => {
  it("carries the code and uses Kafka's default message unless given a reason", () => {
    const error = new KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION);
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe(3);
    expect(error.retriable).toBe(true);
    expect(error.message).toBe(
      "UNKNOWN_TOPIC_OR_PARTITION (3): This server does not host this topic-partition.",
    );
    expect(new KafkaError(ErrorCode.INVALID_CONFIG, "segment.bytes must be at least 14").message).toBe(
      "INVALID_CONFIG (40): segment.bytes must be at least 14",
    );
  });
});

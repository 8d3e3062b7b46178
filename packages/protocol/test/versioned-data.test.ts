import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import {
  ConsumerProtocolAssignmentCodec,
  ConsumerProtocolSubscriptionCodec,
  decodeVersionedData,
  encodeVersionedData,
  ProtocolDecodeError,
} from "../src/index.js";

const require = createRequire(import.meta.url);
const { AssignerProtocol } = require("kafkajs") as {
  AssignerProtocol: {
    MemberMetadata: { encode(value: object): Buffer };
    MemberAssignment: { decode(bytes: Buffer): { version: number; assignment: object; userData: Buffer } };
  };
};

describe("consumer protocol data (JoinGroup metadata, SyncGroup assignment)", () => {
  it("decodes the subscription metadata kafkajs sends in JoinGroup", () => {
    const bytes = AssignerProtocol.MemberMetadata.encode({
      version: 1,
      topics: ["a", "b"],
      userData: Buffer.from("u"),
    });
    const { version, readAsVersion, value } = decodeVersionedData(ConsumerProtocolSubscriptionCodec, bytes);
    // kafkajs declares version 1 but omits v1's ownedPartitions, so only the v0 layout fits.
    expect([version, readAsVersion]).toEqual([1, 0]);
    expect(value.topics).toEqual(["a", "b"]);
    expect(value.userData?.toString()).toBe("u");
  });

  it("encodes an assignment kafkajs reads from SyncGroup", () => {
    const bytes = encodeVersionedData(ConsumerProtocolAssignmentCodec, 0, {
      assignedPartitions: [
        { topic: "a", partitions: [0, 2] },
        { topic: "b", partitions: [1] },
      ],
      userData: null,
    });
    const decoded = AssignerProtocol.MemberAssignment.decode(bytes);
    expect(decoded.version).toBe(0);
    expect(decoded.assignment).toEqual({ a: [0, 2], b: [1] });
  });

  it("reads a version newer than the schemas with the newest known layout, as Kafka does", () => {
    const v3 = encodeVersionedData(ConsumerProtocolSubscriptionCodec, 3, {
      topics: ["t"],
      userData: null,
      ownedPartitions: [{ topic: "t", partitions: [4] }],
      generationId: 9,
      rackId: "rack-1",
    });
    const future = Buffer.concat([v3, Buffer.from([1, 2, 3])]);
    future.writeInt16BE(7, 0);
    const { version, value } = decodeVersionedData(ConsumerProtocolSubscriptionCodec, future);
    expect(version).toBe(7);
    expect(value).toMatchObject({ topics: ["t"], generationId: 9, rackId: "rack-1" });
  });

  it("rejects negative versions and truncated bodies with ProtocolDecodeError", () => {
    expect(() =>
      decodeVersionedData(ConsumerProtocolSubscriptionCodec, Buffer.from([0xff, 0xff, 0, 0])),
    ).toThrow(ProtocolDecodeError);
    expect(() =>
      decodeVersionedData(ConsumerProtocolAssignmentCodec, Buffer.from([0, 0, 0, 0, 0, 5])),
    ).toThrow(/ConsumerProtocolAssignment v0/);
  });
});

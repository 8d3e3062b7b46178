export * from "./codec/api.js";
export * from "./codec/constants.js";
export * from "./codec/errors.js";
export * from "./codec/reader.js";
export * from "./codec/writer.js";
export * from "./generated/index.js";

export * from "./config.js";
export * from "./errors.js";
export * from "./flush-scheduler.js";
export * from "./leader-epoch-cache.js";
export * from "./partition-log.js";
export * from "./record-batch-header.js";
export * from "./retention.js";
export * from "./stable-store.js";

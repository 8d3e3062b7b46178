export { ExitCode, START_USAGE, start } from "./commands/start.js";

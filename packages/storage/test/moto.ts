import { type ChildProcess, spawn } from "node:child_process";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";

export interface MotoServer {
  endpoint: string;
  process: ChildProcess;
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

const credentials = { accessKeyId: "testing", secretAccessKey: "testing" };
export const motoCredentials = credentials;

/**
 * Starts a real moto_server (S3 emulator) on a free port chosen by the OS. Fails, never skips, when
 * moto is missing, saying how to install it.
 */
export async function startMoto(): Promise<MotoServer> {
  const child = spawn("moto_server", ["-H", "127.0.0.1", "-p", "0"], { stdio: ["ignore", "pipe", "pipe"] });
  const endpoint = await new Promise<string>((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`moto_server did not report its port within 60 s; its output was:\n${output}`));
    }, 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /Running on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("error", (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        error.code === "ENOENT"
          ? new Error(
              "moto_server is not on PATH; the S3 tests need it: install it with " +
                "`pip install 'moto[server]'` (which provides the moto_server command) and re-run",
            )
          : error,
      );
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(
        new Error(`moto_server exited with code ${code} before it was ready; its output was:\n${output}`),
      );
    });
  });
  const client = new S3Client({ region: "us-east-1", endpoint, forcePathStyle: true, credentials });
  return {
    endpoint,
    process: child,
    async createBucket(name: string) {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    async stop() {
      client.destroy();
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

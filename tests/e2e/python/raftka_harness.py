"""Starts `raftka start` as a real process for the Python suites (the twin of tests/e2e/harness/broker.ts).

    broker = RaftkaBroker.start(settings={"num.partitions": 3})
    broker.bootstrap        # "127.0.0.1:<port>"
    broker.stop()           # SIGTERM, returns the exit code
    broker.kill()           # SIGKILL
    broker.restart()        # same data directory and Kafka port
    broker.cleanup()        # kill if running, delete the temporary data directory
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

REPOSITORY_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
RAFTKA_MAIN = os.path.join(REPOSITORY_ROOT, "packages", "cli", "dist", "main.js")

_launch_cache = {}


def _broker_launch(node):
    """The broker's V8 flags and environment (glibc malloc settings, libuv pool size) as
    packages/cli/src/node-flags.ts defines them; values already in the environment win. Asked once per
    test session (a Node start each time, about 0.1 s): neither the built file nor the environment
    changes in between."""
    if node not in _launch_cache:
        _launch_cache[node] = json.loads(
            subprocess.check_output(
                [node, os.path.join(REPOSITORY_ROOT, "scripts", "lib", "broker-launch.mjs"), "--json"], text=True
            )
        )
    return _launch_cache[node]

class RaftkaBroker:
    def __init__(self, data_dir, temporary, settings, ready_timeout):
        self.data_dir = data_dir
        self.temporary = temporary
        self.settings = dict(settings)
        self.ready_timeout = ready_timeout
        self.kafka_port = 0
        self.admin_port = 0
        self.node_id = 0
        self.logs = []
        self.process = None

    @classmethod
    def start(cls, settings=None, data_dir=None, ready_timeout=60.0):
        temporary = data_dir is None
        broker = cls(data_dir or tempfile.mkdtemp(prefix="raftka-py-e2e-"), temporary, settings or {}, ready_timeout)
        broker._spawn(0)
        return broker

    @property
    def bootstrap(self):
        return "127.0.0.1:%d" % self.kafka_port

    @property
    def admin_url(self):
        return "http://127.0.0.1:%d" % self.admin_port

    def _spawn(self, kafka_port):
        settings = {
            "listeners": "PLAINTEXT://127.0.0.1:%d" % kafka_port,
            "admin.listener": "127.0.0.1:0",
            "log.dirs": self.data_dir,
        }
        settings.update(self.settings)
        node = shutil.which("node") or "node"
        launch = _broker_launch(node)
        args = [node] + launch["nodeFlags"] + [RAFTKA_MAIN, "start"] + ["--%s=%s" % (key, value) for key, value in settings.items()]
        self.logs = []
        env = dict(os.environ)
        env.update(launch["environment"])
        self.process = subprocess.Popen(
            args, cwd=REPOSITORY_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        ready = threading.Event()

        def read_stdout(process, logs):
            for text in process.stdout:
                try:
                    line = json.loads(text)
                except ValueError:
                    line = {"msg": text.rstrip("\n")}
                logs.append(line)
                if line.get("msg") == "ready":
                    self.kafka_port = int(line["kafkaPort"])
                    self.admin_port = int(line["adminPort"])
                    self.node_id = int(line["nodeId"])
                    ready.set()

        threading.Thread(target=read_stdout, args=(self.process, self.logs), daemon=True).start()
        deadline = time.monotonic() + self.ready_timeout
        while not ready.wait(0.05):
            if self.process.poll() is not None or time.monotonic() > deadline:
                stderr = self.process.stderr.read() if self.process.poll() is not None else ""
                self.process.kill()
                raise RuntimeError(
                    "raftka did not become ready (exit code %s):\n%s\n%s"
                    % (self.process.poll(), stderr, "\n".join(json.dumps(line) for line in self.logs[-10:]))
                )

        # A broker started without its flags or environment warns, and would measure and behave unlike
        # the one scripts/start.sh starts: fail here rather than test that one.
        unlike = [line for line in self.logs if {"missingFlags", "missingTunables", "threadPoolSize"} & set(line)]
        if unlike:
            self.stop()
            raise RuntimeError("the harness started raftka unlike scripts/start.sh: %s" % json.dumps(unlike))

    def running(self):
        return self.process is not None and self.process.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.running():
            self.process.send_signal(sig)
        return self.process.wait(timeout)

    def kill(self):
        if self.running():
            self.process.kill()
        self.process.wait(30)

    def restart(self):
        if self.running():
            raise RuntimeError("the broker is still running; stop() or kill() it before restart()")
        self._spawn(self.kafka_port)
        return self

    def cleanup(self):
        if self.running():
            self.process.kill()
            self.process.wait(30)
        if self.temporary:
            shutil.rmtree(self.data_dir, ignore_errors=True)

"""A partition-level Fetch error reaches librdkafka's consumers as the error Kafka would send, so they act on
it: a fetch offset out of range resets by auto.offset.reset instead of failing to parse the answer (a null
record set, which librdkafka refuses and re-fetches at once, forever)."""

import subprocess
import time

from confluent_kafka import Consumer, TopicPartition

from clients import produce_confluent


def three_records(broker, topic):
    produce_confluent(broker.bootstrap, topic, [(b"k%d" % i, b"v%d" % i, None) for i in range(3)], partition=0)


def test_confluent_consumer_out_of_range_resets_to_earliest(broker):
    three_records(broker, "fetch-out-of-range")
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": "fetch-out-of-range",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.assign([TopicPartition("fetch-out-of-range", 0, 1000)])
    received = []
    deadline = time.monotonic() + 20
    while len(received) < 3 and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None or message.error():
            continue
        received.append((message.offset(), message.value()))
    consumer.close()
    assert received == [(0, b"v0"), (1, b"v1"), (2, b"v2")]


def test_kcat_out_of_range_resets_to_earliest(broker):
    three_records(broker, "kcat-out-of-range")
    command = ["kcat", "-b", broker.bootstrap, "-t", "kcat-out-of-range", "-p", "0", "-C", "-o", "1000", "-e", "-q"]
    command += ["-X", "auto.offset.reset=earliest", "-f", "%o %s\n"]
    output = subprocess.run(command, check=True, timeout=30, capture_output=True)
    assert output.stdout.decode().splitlines() == ["0 v0", "1 v1", "2 v2"]

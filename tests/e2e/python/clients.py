"""Thin wrappers that produce and consume with kafka-python, confluent-kafka (librdkafka) and kcat the way an
application would, without consumer groups (assign + seek), so every client reads what the others wrote."""

import subprocess
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition as ConfluentPartition
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

KAFKA_PYTHON_CODECS = {"none": None, "gzip": "gzip", "snappy": "snappy", "lz4": "lz4", "zstd": "zstd"}


def produce_kafka_python(bootstrap, topic, records, codec="none", partition=None):
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", compression_type=KAFKA_PYTHON_CODECS[codec], linger_ms=5
    )
    futures = [
        producer.send(topic, key=key, value=value, headers=headers, partition=partition)
        for key, value, headers in records
    ]
    producer.flush(30)
    offsets = [future.get(timeout=30).offset for future in futures]
    producer.close(10)
    return offsets


def produce_confluent(bootstrap, topic, records, codec="none", partition=None):
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": "all", "compression.codec": codec, "linger.ms": 5}
    )
    errors = []
    for key, value, headers in records:
        kwargs = {"key": key, "value": value, "headers": headers or None}
        if partition is not None:
            kwargs["partition"] = partition
        producer.produce(topic, on_delivery=lambda error, _message: errors.append(error) if error else None, **kwargs)
    remaining = producer.flush(30)
    assert remaining == 0, "%d records were not delivered" % remaining
    assert errors == [], errors
    return len(records)


def produce_kcat(bootstrap, topic, records, codec="none", partition=None):
    """kcat -P with key:value lines; every record of one call carries the same headers (kcat's -H)."""
    headers = records[0][2] or []
    args = ["kcat", "-b", bootstrap, "-t", topic, "-P", "-K", "\t", "-z", codec, "-X", "acks=all"]
    if partition is not None:
        args += ["-p", str(partition)]
    for name, value in headers:
        args += ["-H", "%s=%s" % (name, value.decode())]
    lines = "".join("%s\t%s\n" % (key.decode(), value.decode()) for key, value, _headers in records)
    subprocess.run(args, input=lines.encode(), check=True, timeout=60)
    return len(records)


def consume_kafka_python(bootstrap, topic, expected, timeout=30):
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=1000)
    partitions = [TopicPartition(topic, partition) for partition in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    records = []
    deadline = time.monotonic() + timeout
    while len(records) < expected and time.monotonic() < deadline:
        for message in consumer:
            records.append((message.partition, message.offset, message.key, message.value, list(message.headers)))
    consumer.close()
    return records


def confluent_consumer(bootstrap):
    # group.id is required by librdkafka even without group membership; nothing is committed.
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "raftka-interop",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )


def consume_confluent(bootstrap, topic, expected, timeout=30):
    consumer = confluent_consumer(bootstrap)
    metadata = consumer.list_topics(topic, timeout=10)
    partitions = sorted(metadata.topics[topic].partitions)
    consumer.assign([ConfluentPartition(topic, partition, OFFSET_BEGINNING) for partition in partitions])
    records = []
    deadline = time.monotonic() + timeout
    while len(records) < expected and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None or message.error():
            continue
        headers = [(name, value) for name, value in (message.headers() or [])]
        records.append((message.partition(), message.offset(), message.key(), message.value(), headers))
    consumer.close()
    return records


def consume_kcat(bootstrap, topic, _expected=None, timeout=30):
    """kcat -C -e reads every partition from the beginning and exits at the end of each."""
    output = subprocess.run(
        ["kcat", "-b", bootstrap, "-t", topic, "-C", "-o", "beginning", "-e", "-q", "-f", "%p\t%o\t%k\t%s\t%h\n"],
        check=True,
        timeout=timeout,
        capture_output=True,
    ).stdout
    records = []
    for line in output.decode().splitlines():
        partition, offset, key, value, headers = line.split("\t")
        parsed = []
        if headers:
            for header in headers.split(","):
                name, _, header_value = header.partition("=")
                parsed.append((name, header_value.encode()))
        records.append((int(partition), int(offset), key.encode(), value.encode(), parsed))
    return records

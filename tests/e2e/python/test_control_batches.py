"""Raft's own entries are control batches in the partition log; the broker serves them as empty control
batches. Every client must step over one without showing it to the application, whether data follows it
or it is the last thing in the log."""

import json
import os
import subprocess

from confluent_kafka import OFFSET_BEGINNING, TopicPartition as ConfluentPartition
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from clients import confluent_consumer, consume_confluent, consume_kafka_python, consume_kcat
from raftka_harness import REPOSITORY_ROOT

INJECT = os.path.join(REPOSITORY_ROOT, "tests", "e2e", "harness", "inject-control-batch.mjs")


def produce(bootstrap, topic, values):
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for value in values:
        producer.send(topic, value=value, partition=0).get(timeout=30)
    producer.close()


def inject_control_batch(broker, topic):
    """Stops the broker, appends a Raft control batch to partition 0, starts it again; returns its offset.
    The batch lies beyond the commit index Raft recorded at shutdown, so the restarted partition leader
    commits it with its own no-op: two control batches follow each other."""
    assert broker.stop() == 0
    output = subprocess.run(
        ["node", INJECT, os.path.join(broker.data_dir, "%s-0" % topic)], check=True, capture_output=True, timeout=60
    ).stdout
    broker.restart()
    return json.loads(output)["offset"]


def kafka_python_position_after_reading(bootstrap, topic):
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=2000)
    partition = TopicPartition(topic, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    values = [message.value for message in consumer]
    position = consumer.position(partition)
    consumer.close()
    return values, position


def confluent_read_to_eof(bootstrap, topic):
    """Reads partition 0 until librdkafka reports partition EOF, i.e. its fetch position reached the high
    watermark. (Its position() is the last delivered message + 1, so it does not show a skipped trailing
    control batch; the EOF does.)"""
    consumer = confluent_consumer(bootstrap)
    consumer.assign([ConfluentPartition(topic, 0, OFFSET_BEGINNING)])
    values = []
    for _ in range(60):
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            consumer.close()
            return values
        values.append(message.value())
    consumer.close()
    raise AssertionError("confluent-kafka never reached the end of the partition; read %r" % values)


def test_clients_skip_a_raft_control_batch_between_data(broker_factory):
    broker = broker_factory()
    produce(broker.bootstrap, "between", [b"before-1", b"before-2"])
    assert inject_control_batch(broker, "between") == 2
    produce(broker.bootstrap, "between", [b"after-1"])
    expected = [b"before-1", b"before-2", b"after-1"]
    assert [record[3] for record in consume_kafka_python(broker.bootstrap, "between", 3)] == expected
    assert [record[3] for record in consume_confluent(broker.bootstrap, "between", 3)] == expected
    kcat = consume_kcat(broker.bootstrap, "between")
    assert [record[3] for record in kcat] == expected
    # The data after the control batches keeps its own offset: nothing was renumbered.
    assert [record[1] for record in kcat] == [0, 1, 4]


def test_clients_step_over_a_raft_control_batch_at_the_end_of_the_log(broker_factory):
    broker = broker_factory()
    produce(broker.bootstrap, "at-end", [b"only"])
    assert inject_control_batch(broker, "at-end") == 1
    values, position = kafka_python_position_after_reading(broker.bootstrap, "at-end")
    assert (values, position) == ([b"only"], 3)
    assert confluent_read_to_eof(broker.bootstrap, "at-end") == [b"only"]
    assert [record[3] for record in consume_kcat(broker.bootstrap, "at-end")] == [b"only"]

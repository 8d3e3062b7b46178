"""librdkafka's producer gets Kafka's per-record refusals: a record without a key on a compacted topic fails
with INVALID_RECORD, a record whose timestamp is outside message.timestamp.difference.max.ms fails with
INVALID_TIMESTAMP even in the middle of a batch, and nothing of a refused batch reaches the log."""

import time

from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

HOUR_MS = 3_600_000


def create_topic(broker, topic, config):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1, config=config)]).values():
        future.result(30)


def produce(broker, topic, messages, codec="none"):
    """Sends `messages` (dicts of Producer.produce arguments) in one batch; returns (error code, offset) each."""
    producer = Producer(
        {"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 200, "compression.codec": codec}
    )
    results = [None] * len(messages)

    def on_delivery(index):
        def report(error, message):
            results[index] = (error.code() if error else KafkaError.NO_ERROR, message.offset())

        return report

    for index, message in enumerate(messages):
        producer.produce(topic, partition=0, on_delivery=on_delivery(index), **message)
    assert producer.flush(30) == 0, "records were not delivered or failed within 30 s"
    return results


def test_compacted_topic_refuses_records_without_a_key(broker):
    for policy in ["compact", "compact,delete"]:
        topic = "keys-%s" % policy.replace(",", "-")
        create_topic(broker, topic, {"cleanup.policy": policy})
        refused = produce(broker, topic, [{"key": b"a", "value": b"keyed"}, {"value": b"no key"}])
        assert [code for code, _offset in refused] == [KafkaError.INVALID_RECORD] * 2, (policy, refused)
        assert produce(broker, topic, [{"key": b"a", "value": b"keyed"}]) == [(KafkaError.NO_ERROR, 0)], policy


def test_every_record_timestamp_is_held_against_the_bound(broker):
    topic = "timestamps-bounded"
    create_topic(broker, topic, {"message.timestamp.difference.max.ms": "60000"})
    now = int(time.time() * 1000)
    batch = [
        {"value": b"now", "timestamp": now},
        {"value": b"ten hours ago", "timestamp": now - 10 * HOUR_MS},
        {"value": b"now again", "timestamp": now},
    ]
    for codec in ["none", "gzip"]:
        refused = produce(broker, topic, batch, codec=codec)
        assert [code for code, _offset in refused] == [KafkaError.INVALID_TIMESTAMP] * 3, (codec, refused)
    assert produce(broker, topic, [{"value": b"now", "timestamp": now}]) == [(KafkaError.NO_ERROR, 0)]

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


def accepted_after_refusal(results, refused_index, code):
    """The refused record failed with `code`; each other one either went down with it (same batch) or, when
    librdkafka sent it in a batch of its own (its batching is timing-dependent), was stored. Returns how many
    were stored, so the caller can check that nothing of the refused batch reached the log."""
    assert results[refused_index][0] == code, results
    for index, (result_code, _offset) in enumerate(results):
        assert result_code in (code, KafkaError.NO_ERROR), (index, results)
    return sum(1 for result_code, _offset in results if result_code == KafkaError.NO_ERROR)


def test_compacted_topic_refuses_records_without_a_key(broker):
    for policy in ["compact", "compact,delete"]:
        topic = "keys-%s" % policy.replace(",", "-")
        create_topic(broker, topic, {"cleanup.policy": policy})
        results = produce(broker, topic, [{"key": b"a", "value": b"keyed"}, {"value": b"no key"}])
        stored = accepted_after_refusal(results, 1, KafkaError.INVALID_RECORD)
        assert produce(broker, topic, [{"key": b"a", "value": b"keyed"}]) == [(KafkaError.NO_ERROR, stored)], (
            policy,
            results,
        )


def test_every_record_timestamp_is_held_against_the_bound(broker):
    topic = "timestamps-bounded"
    create_topic(broker, topic, {"message.timestamp.difference.max.ms": "60000"})
    now = int(time.time() * 1000)
    batch = [
        {"value": b"now", "timestamp": now},
        {"value": b"ten hours ago", "timestamp": now - 10 * HOUR_MS},
        {"value": b"now again", "timestamp": now},
    ]
    stored = 0
    for codec in ["none", "gzip"]:
        results = produce(broker, topic, batch, codec=codec)
        stored += accepted_after_refusal(results, 1, KafkaError.INVALID_TIMESTAMP)
    assert produce(broker, topic, [{"value": b"now", "timestamp": now}]) == [(KafkaError.NO_ERROR, stored)]

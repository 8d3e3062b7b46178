"""kafka-python, confluent-kafka and kcat produce to the same topics with every codec, and each of them reads
back exactly what all of them wrote: keys, values, headers, in order per producer."""

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from clients import (
    consume_confluent,
    consume_kafka_python,
    consume_kcat,
    produce_confluent,
    produce_kafka_python,
    produce_kcat,
)

PRODUCERS = {"kafka-python": produce_kafka_python, "confluent-kafka": produce_confluent, "kcat": produce_kcat}
CONSUMERS = {"kafka-python": consume_kafka_python, "confluent-kafka": consume_confluent, "kcat": consume_kcat}
RECORDS_PER_PRODUCER = 25


def records_for(producer, codec):
    return [
        (
            ("%s-%d" % (producer, index)).encode(),
            ("%s:%s:%d:%s" % (codec, producer, index, "x" * (index * 37 % 300))).encode(),
            [("origin", producer.encode())],
        )
        for index in range(RECORDS_PER_PRODUCER)
    ]


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_every_client_reads_what_every_client_wrote(broker, codec):
    topic = "interop-%s" % codec
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    admin.close()
    expected = {}
    for producer, produce in PRODUCERS.items():
        records = records_for(producer, codec)
        produce(broker.bootstrap, topic, records, codec=codec)
        expected[producer] = [(key, value) for key, value, _headers in records]

    total = RECORDS_PER_PRODUCER * len(PRODUCERS)
    for consumer_name, consume in CONSUMERS.items():
        records = consume(broker.bootstrap, topic, total)
        assert len(records) == total, "%s read %d of %d records" % (consumer_name, len(records), total)
        received = {}
        positions = {}
        for partition, offset, key, value, headers in sorted(records, key=lambda record: (record[0], record[1])):
            origin = dict(headers)["origin"].decode()
            received.setdefault(origin, []).append((key, value))
            index = int(key.decode().rsplit("-", 1)[1])
            # Within a partition, each producer's records are in the order it sent them.
            assert index > positions.get((origin, partition), -1), "%s read %s out of order" % (consumer_name, key)
            positions[(origin, partition)] = index
        # Every record arrives exactly once, with its key, value and header intact.
        assert {origin: sorted(pairs) for origin, pairs in received.items()} == {
            origin: sorted(pairs) for origin, pairs in expected.items()
        }, "%s read a different set of records" % consumer_name

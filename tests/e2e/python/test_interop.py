"""kafka-python, confluent-kafka and kcat produce to the same topics with every codec, and each of them reads
back exactly what all of them wrote: keys, values, headers, in order per producer."""

import glob
import os
import struct

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
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
CONTROL_BATCH = 0x20


def records_for(producer, codec):
    return [
        (
            ("%s-%d" % (producer, index)).encode(),
            ("%s:%s:%d:%s" % (codec, producer, index, "x" * (index * 37 % 300))).encode(),
            [("origin", producer.encode())],
        )
        for index in range(RECORDS_PER_PRODUCER)
    ]


def stored_codecs(data_dir, topic):
    """The codec of every data batch in the topic's segment files, read straight from disk (docs/storage-format.md)."""
    codecs = []
    for segment in glob.glob(os.path.join(data_dir, "%s-*" % topic, "*.log")):
        with open(segment, "rb") as file:
            data = file.read()
        position = 0
        while position + 23 <= len(data):
            (length,) = struct.unpack_from(">i", data, position + 8)
            (attributes,) = struct.unpack_from(">h", data, position + 21)
            if not attributes & CONTROL_BATCH:
                codecs.append(attributes & 0x07)
            position += 12 + length
    return codecs


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

    # The broker keeps the clients' batches as they were sent: compressed batches stay compressed on disk.
    codecs = stored_codecs(broker.data_dir, topic)
    assert codecs, "no batches found on disk for %s" % topic
    assert set(codecs) == {CODEC_IDS[codec]}, "stored codecs %s for %s" % (sorted(set(codecs)), codec)

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

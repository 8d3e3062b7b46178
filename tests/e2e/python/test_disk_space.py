"""librdkafka (confluent-kafka) against a broker whose disk runs low: the broker holds producers back with
KAFKA_STORAGE_ERROR (log.dir.min.free.bytes), librdkafka retries, and once the disk has room every
message is delivered exactly once, in order."""

import subprocess
import tempfile
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

MIB = 1024 * 1024


@pytest.fixture
def small_disk():
    directory = tempfile.mkdtemp(prefix="raftka-py-tmpfs-")
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", directory], check=True)
    except (subprocess.CalledProcessError, OSError) as error:
        subprocess.run(["rmdir", directory])
        pytest.fail("this test mounts a tmpfs and needs root (run the suite as root, as CI does): %s" % error)
    yield directory
    subprocess.run(["umount", directory], check=True)
    subprocess.run(["rmdir", directory], check=True)


# small_disk first: fixtures are torn down in reverse, so the broker stops before the disk is unmounted.
def test_librdkafka_retries_through_a_low_disk_and_delivers_everything_once(small_disk, broker_factory):
    broker = broker_factory({"log.dir.min.free.bytes": 24 * MIB}, data_dir=small_disk + "/data")
    topic = "low-disk"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)]).values():
        future.result(timeout=30)

    producer = Producer(
        {
            "bootstrap.servers": broker.bootstrap,
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.timeout.ms": 120000,
            "retry.backoff.ms": 100,
        }
    )
    delivered = []
    failures = []

    def on_delivery(error, message):
        if error is not None:
            failures.append(error)
        else:
            delivered.append(message)

    # 40 MB into a 48 MiB disk that keeps 24 MiB free: only about half can be stored before the refusal.
    count = 4000
    for index in range(count):
        producer.produce(topic, key=str(index), value=("%d:" % index).ljust(10_000, "x"), partition=index % 2, on_delivery=on_delivery)
        producer.poll(0)

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any("Produce is refused" in str(line.get("msg")) for line in broker.logs):
        producer.poll(0.1)
    assert any("Produce is refused" in str(line.get("msg")) for line in broker.logs), "the broker never refused Produce"
    producer.poll(2)
    held_back = count - len(delivered)
    assert held_back > 1000, "only %d of %d messages were held back" % (held_back, count)
    assert failures == []

    # Room again (a grown volume): librdkafka's retries get through, nothing fails.
    subprocess.run(["mount", "-o", "remount,size=160m", small_disk], check=True)
    assert producer.flush(60) == 0
    assert failures == []
    assert len(delivered) == count

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "low-disk-reader", "enable.auto.commit": False})
    for partition in range(2):
        consumer.assign([TopicPartition(topic, partition, 0)])
        values = []
        while len(values) < count // 2:
            message = consumer.poll(10)
            assert message is not None, "partition %d stopped short at %d records" % (partition, len(values))
            if not message.error():
                values.append(int(message.value().split(b":")[0]))
        assert values == list(range(partition, count, 2))
        high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)[1]
        assert high == count // 2
    consumer.close()

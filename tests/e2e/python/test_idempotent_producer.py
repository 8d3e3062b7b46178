"""librdkafka's idempotent producer (confluent-kafka, enable.idempotence=true) keeps exactly-once order while
the broker cuts its connection instead of answering, after having appended the batch."""

import json
import urllib.request

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def faults(broker, method, rule=None):
    request = urllib.request.Request(
        broker.admin_url + "/v1/test/faults",
        method=method,
        data=json.dumps(rule).encode() if rule is not None else None,
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def read_partitions(broker, topic, partitions):
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "reader-" + topic, "enable.auto.commit": False})
    result = {}
    for partition in range(partitions):
        high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)[1]
        consumer.assign([TopicPartition(topic, partition, 0)])
        values = []
        while len(values) < high:
            message = consumer.poll(5)
            assert message is not None, "partition %d stopped short at %d of %d records" % (partition, len(values), high)
            if not message.error():
                values.append(int(message.value()))
        result[partition] = values
    consumer.close()
    return result


def test_librdkafka_idempotent_producer_through_cut_connections(broker_factory):
    broker = broker_factory({"test.fault.injection.enable": "true"})
    topic = "librdkafka-idempotent"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)]).values():
        future.result(timeout=30)

    faults(broker, "POST", {"api": "Produce", "every": 3, "count": 15})
    producer = Producer(
        {
            "bootstrap.servers": broker.bootstrap,
            "enable.idempotence": True,
            "linger.ms": 2,
            "batch.num.messages": 20,
            "message.timeout.ms": 60000,
            # Reconnect at once after each cut (the default backoff grows towards 10 s per reconnect).
            "reconnect.backoff.ms": 20,
            "reconnect.backoff.max.ms": 200,
            "retry.backoff.ms": 20,
        }
    )
    failures = []
    count = 2000
    for index in range(count):
        producer.produce(
            topic,
            key=b"k%d" % (index % 3),
            value=b"%d" % index,
            on_delivery=lambda error, _message: failures.append(str(error)) if error else None,
        )
        producer.poll(0)
    assert producer.flush(60) == 0
    dropped = faults(broker, "DELETE")["dropped"]

    assert failures == []
    assert dropped >= 10, "the broker should have cut connections instead of answering"
    per_partition = read_partitions(broker, topic, 3)
    values = [value for partition in per_partition.values() for value in partition]
    assert len(values) == count, "duplicates or losses: %d records for %d sent" % (len(values), count)
    assert sorted(values) == list(range(count))
    for partition in per_partition.values():
        assert partition == sorted(partition), "records of a partition out of send order"

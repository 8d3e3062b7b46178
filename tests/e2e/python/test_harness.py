"""The Python harness itself: a real broker process that answers kafka-python and stops cleanly."""

from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def test_produces_and_consumes_with_kafka_python(broker):
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    for index in range(5):
        producer.send("py-smoke", key=b"k%d" % index, value=b"v%d" % index).get(timeout=30)
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, consumer_timeout_ms=5000)
    partition = TopicPartition("py-smoke", 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    values = [message.value for message in consumer]
    consumer.close()
    assert values == [b"v%d" % index for index in range(5)]


def test_stops_with_exit_code_zero_on_sigterm(broker_factory):
    instance = broker_factory()
    assert instance.stop() == 0
    assert any(line.get("msg") == "shutdown complete: every log flushed and closed" for line in instance.logs)

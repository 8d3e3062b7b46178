"""Consumer groups with librdkafka (confluent-kafka) and kafka-python members, also in one group together,
and static members (KIP-345) that restart without a rebalance."""

import json
import threading
import time
import urllib.request

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer
from kafka.coordinator.assignors.range import RangePartitionAssignor

GROUP_SETTINGS = {"group.initial.rebalance.delay.ms": 0, "offsets.topic.num.partitions": 4}


def create_topic(broker, topic, partitions):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)]).values():
        future.result(timeout=30)


def produce(broker, topic, values):
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all"})
    for value in values:
        producer.produce(topic, key=value.encode(), value=value.encode())
    assert producer.flush(30) == 0


def wait_until(description, predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + description)
        time.sleep(0.05)


def admin_get(broker, path):
    with urllib.request.urlopen(broker.admin_url + path, timeout=10) as response:
        return json.loads(response.read())


class Member(threading.Thread):
    """Consumes in a thread, committing synchronously after every message; records what it saw."""

    def __init__(self, name, poll_once, commit, close):
        super().__init__(daemon=True)
        self.name = name
        self.poll_once = poll_once
        self.commit = commit
        self.close_client = close
        self.consumed = []
        self.errors = []
        self.stopping = threading.Event()

    def run(self):
        try:
            while not self.stopping.is_set():
                for partition, offset, value in self.poll_once():
                    self.consumed.append((partition, offset, value))
                    self.commit(partition, offset)
        except Exception as error:  # reported by the test, never swallowed
            self.errors.append(repr(error))
        finally:
            self.close_client()

    def stop(self):
        self.stopping.set()
        self.join(30)
        assert not self.is_alive(), "%s did not stop" % self.name
        assert self.errors == [], "%s failed: %s" % (self.name, self.errors)


def confluent_member(broker, name, topic, group, extra=None):
    assignments = []
    revocations = []
    config = {
        "bootstrap.servers": broker.bootstrap,
        "group.id": group,
        "client.id": name,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "partition.assignment.strategy": "range",
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
    }
    config.update(extra or {})
    consumer = Consumer(config)
    consumer.subscribe(
        [topic],
        on_assign=lambda _c, partitions: assignments.append(sorted(p.partition for p in partitions)),
        on_revoke=lambda _c, partitions: revocations.append(sorted(p.partition for p in partitions)),
    )

    def poll_once():
        message = consumer.poll(0.2)
        if message is None or message.error():
            return []
        return [(message.partition(), message.offset(), message.value().decode())]

    def commit(partition, offset):
        consumer.commit(offsets=[TopicPartition(topic, partition, offset + 1)], asynchronous=False)

    member = Member(name, poll_once, commit, consumer.close)
    member.assignments = assignments
    member.revocations = revocations
    member.client = consumer
    return member


def kafka_python_member(broker, name, topic, group):
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        group_id=group,
        client_id=name,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        partition_assignment_strategy=[RangePartitionAssignor],
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
    )
    from kafka import OffsetAndMetadata
    from kafka import TopicPartition as KafkaTopicPartition

    def poll_once():
        batches = consumer.poll(timeout_ms=200)
        return [(record.partition, record.offset, record.value.decode()) for records in batches.values() for record in records]

    def commit(partition, offset):
        consumer.commit({KafkaTopicPartition(topic, partition): OffsetAndMetadata(offset + 1, None)})

    member = Member(name, poll_once, commit, consumer.close)
    member.client = consumer
    return member


def test_librdkafka_and_kafka_python_consume_in_one_group(broker_factory):
    broker = broker_factory(GROUP_SETTINGS)
    topic = "mixed-clients"
    create_topic(broker, topic, 6)
    first = ["first-%d" % index for index in range(300)]
    produce(broker, topic, first)

    librdkafka = confluent_member(broker, "librdkafka-member", topic, "mixed")
    librdkafka.start()
    wait_until("librdkafka to consume", lambda: len(librdkafka.consumed) > 0)
    python = kafka_python_member(broker, "kafka-python-member", topic, "mixed")
    python.start()
    # The group rebalances to both members (range: three partitions each).
    wait_until("both members to share the partitions", lambda: python.client.assignment() and len(python.client.assignment()) == 3)
    wait_until("librdkafka to be reassigned", lambda: librdkafka.assignments and len(librdkafka.assignments[-1]) == 3)
    second = ["second-%d" % index for index in range(300)]
    produce(broker, topic, second)
    everything = set(first + second)
    consumed = lambda: {value for member in (librdkafka, python) for (_, _, value) in member.consumed}  # noqa: E731
    wait_until("every record to be consumed", lambda: consumed() >= everything)
    librdkafka.stop()
    python.stop()

    assert consumed() == everything
    python_partitions = {partition for (partition, _, value) in python.consumed if value.startswith("second-")}
    librdkafka_partitions = set(librdkafka.assignments[-1])
    assert python_partitions and python_partitions.isdisjoint(librdkafka_partitions)
    # Both committed synchronously after each record and left gracefully: no record twice.
    all_consumed = [value for member in (librdkafka, python) for (_, _, value) in member.consumed]
    assert len(all_consumed) == len(everything)

    # The group's committed offsets end at every partition's end.
    checker = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "mixed"})
    committed = checker.committed([TopicPartition(topic, partition) for partition in range(6)], timeout=30)
    ends = [checker.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)[1] for partition in range(6)]
    checker.close()
    assert [entry.offset for entry in committed] == ends


def test_static_member_restarts_without_a_rebalance(broker_factory):
    broker = broker_factory(GROUP_SETTINGS)
    topic = "static-members"
    create_topic(broker, topic, 4)
    produce(broker, topic, ["before-%d" % index for index in range(40)])
    static = {"session.timeout.ms": 30000}
    a = confluent_member(broker, "member-a", topic, "static", dict(static, **{"group.instance.id": "instance-a"}))
    b = confluent_member(broker, "member-b", topic, "static", dict(static, **{"group.instance.id": "instance-b"}))
    a.start()
    b.start()
    wait_until("both static members to hold two partitions", lambda: a.assignments and b.assignments and len(a.assignments[-1]) == 2 and len(b.assignments[-1]) == 2)
    wait_until("the group to be stable", lambda: admin_get(broker, "/v1/groups/static")["state"] == "Stable")
    before = admin_get(broker, "/v1/groups/static")
    b_partitions = b.assignments[-1]
    a_assignment_count = len(a.assignments)
    old_member_b = next(member["memberId"] for member in before["members"] if member["groupInstanceId"] == "instance-b")

    # A static member leaves no LeaveGroup behind when it closes; its replacement takes over its slot.
    b.stop()
    restarted = confluent_member(broker, "member-b-again", topic, "static", dict(static, **{"group.instance.id": "instance-b"}))
    restarted.start()
    wait_until("the restarted member to get its old partitions back", lambda: restarted.assignments and restarted.assignments[-1] == b_partitions)
    produce(broker, topic, ["after-%d" % index for index in range(40)])
    wait_until(
        "the restarted member to consume new records",
        lambda: any(value.startswith("after-") for (_, _, value) in restarted.consumed),
    )
    after = admin_get(broker, "/v1/groups/static")
    a.stop()
    restarted.stop()

    assert after["state"] == "Stable"
    assert after["generationId"] == before["generationId"]
    new_member_b = next(member["memberId"] for member in after["members"] if member["groupInstanceId"] == "instance-b")
    assert new_member_b != old_member_b
    # The other member was never rebalanced.
    assert len(a.assignments) == a_assignment_count
    assert not any(line.get("kind") == "rebalance-started" and line.get("groupId") == "static" and line.get("generationId") == before["generationId"] for line in broker.logs)


def test_cooperative_rebalancing_members_move_only_some_partitions(broker_factory):
    """librdkafka's cooperative-sticky assignor (KIP-429): the coordinator passes its assignment metadata
    through untouched, and the first member keeps consuming the partitions it keeps."""
    broker = broker_factory(GROUP_SETTINGS)
    topic = "cooperative"
    create_topic(broker, topic, 4)
    produce(broker, topic, ["early-%d" % index for index in range(100)])
    cooperative = {"partition.assignment.strategy": "cooperative-sticky"}
    first = confluent_member(broker, "first", topic, "cooperative", cooperative)
    first.start()
    wait_until("the first member to own every partition", lambda: sum(len(a) for a in first.assignments) == 4)
    second = confluent_member(broker, "second", topic, "cooperative", cooperative)
    second.start()
    wait_until("the second member to get two partitions", lambda: sum(len(a) for a in second.assignments) == 2)
    produce(broker, topic, ["late-%d" % index for index in range(100)])
    everything = {"early-%d" % index for index in range(100)} | {"late-%d" % index for index in range(100)}
    consumed = lambda: [value for member in (first, second) for (_, _, value) in member.consumed]  # noqa: E731
    wait_until("every record to be consumed", lambda: set(consumed()) >= everything)
    revoked_while_running = sorted(p for revoked in first.revocations for p in revoked)
    # Taken before the first member stops: its leaving hands the second its other two partitions.
    assigned_while_running = sorted(p for assigned in second.assignments for p in assigned)
    first.stop()
    second.stop()

    assert sorted(consumed()) == sorted(everything)
    # Incremental: the first member gave up exactly the two partitions the second took, nothing more.
    assert revoked_while_running == assigned_while_running

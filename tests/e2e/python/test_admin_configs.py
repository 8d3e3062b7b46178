"""kafka-python's admin client can send a config whose value is None (kafkajs refuses to). Kafka refuses such a
value instead of reading it as "remove the override", and so must Raftka: nothing may change."""

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import InvalidConfigurationError

INVALID_REQUEST = 42


def own_configs(admin, topic, keys):
    """The topic's values of `keys`, as DescribeConfigs answers them."""
    (response,) = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, configs={key: None for key in keys})]
    )
    ((error_code, _message, _type, _name, entries),) = response.resources
    assert error_code == 0
    return {entry[0]: entry[1] for entry in entries}


def test_kafka_python_null_config_values_are_refused_and_change_nothing(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        admin.create_topics([NewTopic("null-configs", 1, 1, topic_configs={"retention.ms": "60000"})])

        response = admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC,
                    "null-configs",
                    configs={"retention.ms": None, "segment.bytes": "2097152"},
                )
            ]
        )
        ((error_code, message, _type, _name),) = response.resources
        assert (error_code, message) == (INVALID_REQUEST, "Null value not supported for : retention.ms")
        assert own_configs(admin, "null-configs", ["retention.ms", "segment.bytes"]) == {
            "retention.ms": "60000",
            "segment.bytes": "1073741824",
        }

        with pytest.raises(InvalidConfigurationError):
            admin.create_topics([NewTopic("null-created", 1, 1, topic_configs={"retention.ms": None})])
        assert "null-created" not in admin.list_topics()
    finally:
        admin.close()

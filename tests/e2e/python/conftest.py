"""pytest fixtures for the Python end-to-end suites (run with /usr/bin/python3 -m pytest tests/e2e/python)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from raftka_harness import RaftkaBroker  # noqa: E402


@pytest.fixture(scope="module")
def broker():
    """One broker process per test module, on free ports, with its own data directory."""
    instance = RaftkaBroker.start()
    yield instance
    instance.cleanup()


@pytest.fixture
def broker_factory():
    """Starts brokers with custom settings: broker_factory({"num.partitions": 3}); all cleaned up after the test."""
    started = []

    def start(settings=None, data_dir=None):
        instance = RaftkaBroker.start(settings=settings, data_dir=data_dir)
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.cleanup()

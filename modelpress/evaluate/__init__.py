"""Measurement: latency and memory of a model on given inputs."""

from modelpress.evaluate.latency import Latency, measure_latency
from modelpress.evaluate.memory import peak_activation_bytes

__all__ = ["Latency", "measure_latency", "peak_activation_bytes"]

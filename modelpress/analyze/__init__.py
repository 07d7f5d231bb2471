"""Analysis of a model: parameters, nonzeros, FLOPs, stored bytes, latency and memory, in total and per layer."""

from modelpress.analyze.profile import Profile, count_flops, layer_rows, profile_model

__all__ = ["Profile", "count_flops", "layer_rows", "profile_model"]

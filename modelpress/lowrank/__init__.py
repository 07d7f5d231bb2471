"""Low-rank factorization: SVD for Linear and 1x1 convs, Tucker-2 and CP for k x k convs (the ``low-rank`` stage).

Example:
    >>> import torch
    >>> model = low_rank_(torch.nn.Sequential(torch.nn.Linear(16, 16)), LowRankConfig(rank=2))
    >>> type(model[0]).__name__
    'Sequential'
"""

from modelpress.lowrank.config import LowRankConfig, Method, Spatial
from modelpress.lowrank.verb import low_rank_

__all__ = ["LowRankConfig", "Method", "Spatial", "low_rank_"]

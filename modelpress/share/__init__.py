"""Weight sharing: per-layer k-means with trained centroids (``cluster``) and HashedNets (``hash-share``).

The pieces, each in its own module:

* :mod:`~modelpress.share.config` — the two stage configs and their choices;
* :mod:`~modelpress.share.kmeans` — exact 1-D k-means on sorted values (linear, density, k-means++ starts);
* :mod:`~modelpress.share.centroids` — the training callback that moves each centroid by its cluster's summed
  gradient, so a clustered layer keeps at most ``2^bits`` distinct nonzero values through fine-tuning;
* :mod:`~modelpress.share.cluster` — the ``cluster`` stage;
* :mod:`~modelpress.share.hashing` / :mod:`~modelpress.share.hashed_linear` / :mod:`~modelpress.share.hash_share` —
  the bit-exact position hash, the hashed Linear layer, and the ``hash-share`` stage (a structure change replayed by
  ``unpack``).

Example:
    >>> import torch
    >>> model = share_weights_(torch.nn.Sequential(torch.nn.Linear(32, 16)), ClusterConfig(linear_bits=2))
    >>> model[0].weight.unique().numel() <= 4
    True
"""

from modelpress.share.cluster import apply_cluster
from modelpress.share.config import ClusterConfig, HashInit, HashShareConfig, Init
from modelpress.share.hash_share import apply_hash_share
from modelpress.share.hashed_linear import HashedLinear
from modelpress.share.kmeans import kmeans_1d
from modelpress.share.verb import share_weights_

__all__ = ["ClusterConfig", "HashInit", "HashShareConfig", "HashedLinear", "Init", "apply_cluster",
           "apply_hash_share", "kmeans_1d", "share_weights_"]

"""Every codec, registered: importing this module fills :data:`CODECS` (the planner tries them in this order).

Example:
    >>> sorted(CODECS)
    ['ans', 'bitpack', 'codebook', 'dense', 'huffman', 'planes', 'sparse']
"""

from __future__ import annotations

from modelpress.codec.ans import ANS
from modelpress.codec.base import CODECS
from modelpress.codec.bitpack import BITPACK
from modelpress.codec.codebook import CODEBOOK
from modelpress.codec.dense import DENSE
from modelpress.codec.huffman import HUFFMAN
from modelpress.codec.planes import PLANES
from modelpress.codec.sparse import SPARSE

__all__ = ["CODECS", "SYMBOL_CODECS", "TENSOR_CODECS"]

TENSOR_CODECS = (DENSE, PLANES, CODEBOOK, SPARSE)
SYMBOL_CODECS = (BITPACK, HUFFMAN, ANS)

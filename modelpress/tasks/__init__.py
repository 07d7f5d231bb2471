"""Built-in tasks: the bridges between modelpress and real data (see :mod:`modelpress.task` for the protocol).

Example:
    >>> len(build_corpus()) >= 1500
    True
"""

from modelpress.tasks.corpus import build_corpus
from modelpress.tasks.sentences import SentencesTask

__all__ = ["SentencesTask", "build_corpus"]

"""More unlabeled text from the standard library, for distillation only: the sentences the evaluation corpus leaves out.

Distillation needs inputs, not labels (the teacher labels them), and a student matches its teacher on unseen
sentences better the more varied its transfer set is. The evaluation corpus (:mod:`modelpress.tasks.corpus`) keeps
only clean prose sentences of docstrings, about 7,500; the standard library holds about 2.5 times as much English
text that the prose filter rejects or never sees:

* docstring sentences with code in them ("Return the value of os.environ[key].") that the prose filter rejects;
* comment blocks (``#`` lines joined, then split into sentences), read with :mod:`tokenize`;
* the Python reference manual's topics in ``pydoc_data/topics.py``, read with :func:`ast.literal_eval`.

Nothing is imported or run. A sentence whose case-folded text is in the evaluation corpus (any part of it: training,
held-out or validation) is dropped, as are case-folded duplicates; the rest are ordered by SHA-256 of their text,
so on the same Python (3.11.7) the list is the same on every machine.

Example:
    >>> extra = transfer_sentences()
    >>> len(extra) > 10_000
    True
    >>> from modelpress.tasks.corpus import build_corpus
    >>> {s.casefold() for s in extra}.isdisjoint(s.casefold() for s in build_corpus(max_sentences=None))
    True
"""

from __future__ import annotations

import ast
import io
import sysconfig
import tokenize
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from modelpress.tasks.corpus import build_corpus, docstrings, sentences_of, stable_key, stdlib_files

__all__ = ["comment_blocks", "is_loose_text", "reference_topics", "transfer_sentences"]

_MIN_CHARS, _MAX_CHARS = 30, 300
_MIN_LETTER_FRACTION = 0.7


def is_loose_text(sentence: str) -> bool:
    """Whether a sentence is mostly words: 30–300 characters, starts with a letter, at least 70% of its non-space
    characters are letters. Code inside it is allowed (a transfer set needs varied inputs, not clean prose).

    Example:
        >>> is_loose_text("Return the value of os.environ[key] or the default.")
        True
        >>> is_loose_text("x = f(a[0], b[1]) + g(c[2], d[3]) * 42 - 17.")
        False
    """
    if not (_MIN_CHARS <= len(sentence) <= _MAX_CHARS and sentence[0].isalpha()):
        return False
    visible = [c for c in sentence if not c.isspace()]
    return sum(c.isalpha() for c in visible) >= _MIN_LETTER_FRACTION * len(visible)


def comment_blocks(path: Path) -> Iterator[str]:
    """The texts of a source file's comment blocks (consecutive ``#`` comments, joined with spaces), in file order.

    A file that does not tokenize yields what came before the error.

    Example:
        >>> import textwrap
        >>> any("whitespace" in block for block in comment_blocks(Path(textwrap.__file__)))
        True
    """
    block: list[str] = []
    try:
        for token in tokenize.tokenize(io.BytesIO(path.read_bytes()).readline):
            if token.type == tokenize.COMMENT:
                block.append(token.string.lstrip("#").strip())
            elif token.type not in (tokenize.NL, tokenize.NEWLINE) and block:
                # any other token ends the block; blank lines and line ends inside it do not
                yield " ".join(block)
                block = []
    except (tokenize.TokenError, SyntaxError, OSError):
        pass
    if block:
        yield " ".join(block)


def reference_topics(root: Path | None = None) -> list[str]:
    """The texts of the Python reference manual's topics (``pydoc_data/topics.py``, a dict literal), by topic name.

    Example:
        >>> len(reference_topics()) > 50
        True
    """
    stdlib = Path(sysconfig.get_paths()["stdlib"]) if root is None else Path(root)
    path = stdlib / "pydoc_data" / "topics.py"
    if not path.is_file():
        return []
    for node in ast.parse(path.read_bytes()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "topics" for t in node.targets):
            topics = ast.literal_eval(node.value)  # literals only: no code runs
            return [topics[name] for name in sorted(topics)]
    return []


def transfer_sentences(root: Path | None = None) -> list[str]:
    """Standard-library sentences outside the evaluation corpus (see the module docstring), ordered by SHA-256.

    19,027 on Python 3.11.7. The first call in a process parses and tokenizes the library (about 10 s).

    Example:
        >>> transfer_sentences()[:2] == transfer_sentences()[:2]
        True
    """
    return list(_transfer_sentences(None if root is None else str(root)))


@lru_cache(maxsize=2)
def _transfer_sentences(root: str | None) -> tuple[str, ...]:
    files = stdlib_files(None if root is None else Path(root))
    texts: list[str] = [text for path in files for text in docstrings(path)]
    texts += [block for path in files for block in comment_blocks(path)]
    texts += reference_topics(None if root is None else Path(root))
    evaluated = {s.casefold() for s in build_corpus(max_sentences=None, root=None if root is None else Path(root))}
    unique = {s for text in texts for s in sentences_of(text) if is_loose_text(s) and s.casefold() not in evaluated}
    kept: dict[str, str] = {}  # casefolded -> first sentence in hash order (the tokenizer lowercases)
    for sentence in sorted(unique, key=stable_key):
        kept.setdefault(sentence.casefold(), sentence)
    return tuple(kept.values())

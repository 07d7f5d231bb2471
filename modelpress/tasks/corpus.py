"""A fixed corpus of real English sentences, built from the docstrings of the Python standard library.

The sentence-embedding task measures how faithfully a compressed encoder reproduces the original one. It needs
real English text that every machine has, offline, byte for byte: the docstrings of the standard library's
modules, classes and functions. Files are read and parsed with :mod:`ast` (never imported, so no code runs), in
sorted order; docstrings are split into sentences; only clean prose sentences are kept (see :func:`is_clean`);
duplicates (ignoring case, as the uncased tokenizer does) are dropped; the survivors are ordered by a SHA-256 hash
of their text. Python's own ``hash`` is salted per process, so it is never used. With the same standard library
(Python 3.11.7) the corpus is identical on every run and machine, and because the order is by hash, a sentence
added or removed elsewhere in the library moves no other sentence.

Example:
    >>> sentences = build_corpus()
    >>> len(sentences)
    2000
    >>> train, held_out = split_corpus(sentences)
    >>> set(train).isdisjoint(held_out) and len(train) + len(held_out) == len(sentences)
    True
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import sysconfig
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path

from modelpress.errors import TaskError

__all__ = ["build_corpus", "corpus_digest", "docstrings", "is_clean", "is_held_out", "sentences_of", "split_corpus",
           "stable_key", "stdlib_files"]

# Directories of the standard library that hold no library docstrings worth keeping, or whose contents differ
# between machines: third-party packages, the test suites, the IDLE application, demos, the build config.
_SKIP_DIRS = frozenset({
    "site-packages", "dist-packages", "test", "tests", "idlelib", "turtledemo", "__pycache__", "lib2to3",
    "ensurepip", "__phello__", "pydoc_data",
})

# A sentence ends at . ! or ? followed by whitespace and a capital letter (so "e.g. the" does not split).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
# Tokens that mark code, markup or a missed sentence split rather than prose: doctest prompts, calls, assignments,
# identifiers with underscores, reST roles and literals, brackets, URLs, ellipses, dotted names ("os.path"),
# and a period followed by a lowercase word inside the sentence ("...time. chunksize: if ...").
_CODE_LIKE = re.compile(
    r">>>|\(\)|=|_|`|\*|\\|\||[<>{}\[\]#@$%^~]|::|https?:|www\.|\.\.|\b[a-z]+\.[a-z]+\b|\.\s+[a-z]"
)
_MIN_CHARS, _MAX_CHARS = 40, 200
_MIN_LETTER_FRACTION = 0.85
_HELD_OUT_SALT = b"modelpress/sentences/held-out\x00"


def stdlib_files(root: Path | None = None) -> list[Path]:
    """The standard library's ``.py`` files under ``root``, skipping tests, IDLE and third-party packages.

    Sorted by their path relative to ``root`` (POSIX form), so the order does not depend on the file system.

    Example:
        >>> any(p.name == "textwrap.py" for p in stdlib_files())
        True
    """
    root = Path(sysconfig.get_paths()["stdlib"]) if root is None else Path(root)
    if not root.is_dir():
        raise TaskError("sentence corpus", "the Python standard library's source directory", f"<{root}>",
                        "run with a Python installation that ships its .py sources")
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]  # prune in place: os.walk skips them
        for name in filenames:
            # _sysconfigdata_*.py describes how this particular interpreter was built: machine-specific
            if name.endswith(".py") and not name.startswith("_sysconfigdata"):
                found.append(Path(dirpath) / name)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def docstrings(path: Path) -> Iterator[str]:
    """The cleaned docstrings of a source file's module, classes and functions, in the order :func:`ast.walk`
    visits them. A file that does not parse (e.g. written for another Python) yields nothing.

    Example:
        >>> import textwrap
        >>> next(docstrings(Path(textwrap.__file__)))
        'Text wrapping and filling.'
    """
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            text = ast.get_docstring(node, clean=True)
            if text:
                yield text


def is_clean(sentence: str) -> bool:
    """Whether a sentence reads as English prose: 40–200 characters, starts with a capital letter, ends with a
    single period, at least 85% of its non-space characters are letters, no code-like tokens, balanced brackets.

    Example:
        >>> is_clean("Return the number of tasks required to trip the barrier.")
        True
        >>> is_clean("Call os.path.join(a, b) to build the path_name.")
        False
    """
    if not _MIN_CHARS <= len(sentence) <= _MAX_CHARS:
        return False
    if not (sentence[0].isupper() and sentence.endswith(".")) or _CODE_LIKE.search(sentence):
        return False
    if sentence.count("(") != sentence.count(")") or sentence.count('"') % 2:
        return False
    visible = [c for c in sentence if not c.isspace()]
    return sum(c.isalpha() for c in visible) >= _MIN_LETTER_FRACTION * len(visible)


def sentences_of(docstring: str) -> Iterator[str]:
    """A docstring's sentences: paragraphs reflowed onto one line, split where a sentence ends.

    Example:
        >>> list(sentences_of("First line\\nwraps here. Second one.\\n\\nA heading"))
        ['First line wraps here.', 'Second one.', 'A heading']
    """
    # paragraphs first, so a heading line or a list item never runs into the next paragraph's sentence
    for paragraph in _PARAGRAPH_BREAK.split(docstring):
        text = " ".join(paragraph.split())  # reflow the paragraph's lines onto one line, single spaces
        yield from _SENTENCE_END.split(text)


def stable_key(sentence: str, salt: bytes = b"") -> bytes:
    """SHA-256 of ``salt`` + the sentence's UTF-8 bytes: the order and split key, the same in every process.

    Example:
        >>> stable_key("A.").hex()[:8] == stable_key("A.").hex()[:8]
        True
    """
    return hashlib.sha256(salt + sentence.encode("utf-8")).digest()


def build_corpus(min_sentences: int = 1500, max_sentences: int | None = 2000, root: Path | None = None) -> list[str]:
    """The deterministic sentence corpus: clean docstring sentences of the standard library, ordered by SHA-256.

    ``max_sentences`` keeps the first sentences in hash order (``None`` keeps all of them, about 7,500 on Python
    3.11.7); the default 2,000 keeps evaluation of a 22M-parameter encoder to seconds on a laptop CPU. Raises
    :class:`TaskError` if fewer than ``min_sentences`` are found. The first call in a process takes a few seconds
    (it parses ~570 files); later calls reuse the parsed sentences.

    Example:
        >>> corpus = build_corpus(max_sentences=1500)
        >>> len(corpus), corpus == build_corpus(max_sentences=1500)
        (1500, True)
    """
    if max_sentences is not None and max_sentences < min_sentences:
        raise TaskError("build_corpus", f"max_sentences >= min_sentences ({min_sentences})", max_sentences,
                        "raise max_sentences or lower min_sentences")
    ordered = _clean_sentences_by_hash(None if root is None else str(root))
    if len(ordered) < min_sentences:
        raise TaskError("sentence corpus", f"at least {min_sentences} clean sentences in the standard library",
                        len(ordered), "run with a full Python installation (its .py sources are needed)")
    return list(ordered if max_sentences is None else ordered[:max_sentences])


@lru_cache(maxsize=2)
def _clean_sentences_by_hash(root: str | None) -> tuple[str, ...]:
    # parsed once per process (the library's files do not change under a running program); a tuple, so callers
    # get their own list and cannot edit the cached corpus
    unique: set[str] = set()
    for path in stdlib_files(None if root is None else Path(root)):
        for text in docstrings(path):
            unique.update(s for s in sentences_of(text) if is_clean(s))
    kept: dict[str, str] = {}  # casefolded -> first sentence in hash order
    for sentence in sorted(unique, key=stable_key):
        # the MiniLM tokenizer lowercases, so sentences differing only in case are one input: keep one of them,
        # or the same input could land in both the training and the held-out part
        kept.setdefault(sentence.casefold(), sentence)
    return tuple(kept.values())


def is_held_out(sentence: str, held_out_fraction: float = 0.3) -> bool:
    """Whether a sentence belongs to the held-out part: a salted SHA-256 of its text, read as a number in [0, 1),
    falls below ``held_out_fraction``. It depends on the sentence alone, never on the rest of the corpus.

    Example:
        >>> is_held_out("Deep copy operation on arbitrary Python objects.", 0.0)
        False
    """
    # first 8 bytes of the digest as an unsigned integer, scaled to [0, 1)
    position = int.from_bytes(stable_key(sentence, _HELD_OUT_SALT)[:8], "big") / 2**64
    return position < held_out_fraction


def split_corpus(sentences: Sequence[str], held_out_fraction: float = 0.3) -> tuple[list[str], list[str]]:
    """Split sentences into ``(train, held_out)`` by :func:`is_held_out`, each part keeping the input order.

    Example:
        >>> train, held_out = split_corpus(["First sentence here.", "Second one."], held_out_fraction=0.0)
        >>> train, held_out
        (['First sentence here.', 'Second one.'], [])
    """
    if not 0.0 <= held_out_fraction < 1.0:
        raise TaskError("split_corpus", "held_out_fraction in [0, 1)", held_out_fraction, "use 0.3, say")
    train: list[str] = []
    held_out: list[str] = []
    for sentence in sentences:
        (held_out if is_held_out(sentence, held_out_fraction) else train).append(sentence)
    return train, held_out


def corpus_digest(sentences: Sequence[str]) -> str:
    """Hex SHA-256 of the sentences in order (newline-separated): the corpus part of cache keys.

    Example:
        >>> corpus_digest(["A.", "B."])[:12]
        '5388612c1cb7'
    """
    return hashlib.sha256("\n".join(sentences).encode("utf-8")).hexdigest()

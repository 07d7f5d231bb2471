"""Fuzzing the reader: over 10,000 mutated files, the only exception ever raised is FormatError.

Three kinds of mutation, so that every layer is reached: raw byte edits of the whole file (flips, truncations,
insertions, deletions) — mostly caught by the length, JSON and CRC checks, and any file that still reads must read
exactly as the original; payload edits with the CRCs repaired — these reach the codecs' own decoders; and index edits
with the header checksum repaired — these reach the schema and chain validation.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch

from modelpress.codec import tensor_to_bits
from modelpress.errors import FormatError
from modelpress.format import from_bytes
from tests.format.forge import (
    fix_segment_crcs,
    index_of,
    join_file,
    mutate_bytes,
    sample_file,
    sample_tensors,
    set_index,
    split_file,
)

VALID = sample_file()
ORIGINAL = sample_tensors()
HEADER, SECTION = split_file(VALID)
N = int.from_bytes(VALID[:8], "little")
RAW, PAYLOAD, INDEX = 5000, 3500, 2000


def read(data: bytes) -> dict[str, torch.Tensor] | None:
    """The decoded tensors, or None if the reader rejected the file with a FormatError (anything else fails)."""
    try:
        return from_bytes(data, "fuzz")[0]
    except FormatError:
        return None


def random_json(rng: np.random.Generator):
    choices = [None, True, -1, 0, 1, 7, 2**31, 2**64, 10**40, 1.5, "", "x", "dense", "huffman", [], [0, 0], {},
               {"codec": "dense", "nbytes": 0}]
    return copy.deepcopy(choices[int(rng.integers(0, len(choices)))])


def mutate_index(index: list, rng: np.random.Generator) -> None:
    """Replace, delete or add one value somewhere in the index (entries, shapes, offsets, chain nodes)."""
    containers = []

    def walk(node):
        if isinstance(node, dict):
            containers.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            containers.append(node)
            for value in node:
                walk(value)

    walk(index)
    target = containers[int(rng.integers(0, len(containers)))]
    if isinstance(target, dict) and target:
        key = list(target)[int(rng.integers(0, len(target)))]
        if rng.random() < 0.15:
            del target[key]
        elif isinstance(target[key], int) and not isinstance(target[key], bool) and rng.random() < 0.5:
            target[key] += int(rng.choice([-8, -1, 1, 8, 1000]))
        else:
            target[key] = random_json(rng)
    elif isinstance(target, list) and target:
        position = int(rng.integers(0, len(target)))
        target[position] = random_json(rng)
    elif isinstance(target, dict):
        target["extra"] = random_json(rng)


def test_ten_thousand_mutated_files_raise_only_format_errors():
    rng = np.random.default_rng(20261122)
    start = time.perf_counter()
    outcomes = {"raw": [0, 0], "payload": [0, 0], "index": [0, 0]}  # [rejected, decoded]

    for _ in range(RAW):
        tensors = read(mutate_bytes(VALID, rng))
        outcomes["raw"][tensors is not None] += 1
        if tensors is not None:  # a raw edit that still reads must be harmless: same tensors, bit for bit
            assert all(np.array_equal(tensor_to_bits(tensors[k]), tensor_to_bits(v)) for k, v in ORIGINAL.items())

    section = np.frombuffer(SECTION, np.uint8)
    for _ in range(PAYLOAD):
        edited = section.copy()
        spots = rng.integers(0, edited.size, int(rng.integers(1, 4)))
        edited[spots] ^= rng.integers(1, 256, spots.size).astype(np.uint8)
        tensors = read(fix_segment_crcs(VALID[:8 + N] + edited.tobytes()))
        outcomes["payload"][tensors is not None] += 1
        if tensors is not None:  # the CRCs were repaired, so other values may decode, but in the declared form
            assert all(tensors[k].dtype == v.dtype and tensors[k].shape == v.shape for k, v in ORIGINAL.items())

    for _ in range(INDEX):
        index = index_of(HEADER)
        mutate_index(index, rng)
        tensors = read(join_file(set_index(copy.deepcopy(HEADER), index), SECTION))
        outcomes["index"][tensors is not None] += 1

    elapsed = time.perf_counter() - start
    assert sum(sum(pair) for pair in outcomes.values()) >= 10_000
    # Every kind both rejects and (where harmless or repaired) decodes: the mutations reach the decoders.
    assert outcomes["raw"][0] > 0.9 * RAW
    assert outcomes["payload"][0] > 0.1 * PAYLOAD and outcomes["payload"][1] > 0.1 * PAYLOAD
    assert outcomes["index"][0] > 0.8 * INDEX
    assert elapsed < 60, f"fuzzing took {elapsed:.1f}s"

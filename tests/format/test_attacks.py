"""The attack corpus: each malformed file is rejected with a FormatError whose message names the violation.

Files are forged from a valid one; where a check sits behind a checksum, the forgery repairs the checksum so that
the deeper check is the one that fires (otherwise every edit would only prove that CRC-32 works).
"""

from __future__ import annotations

import copy
import json

import pytest

from modelpress.errors import FormatError
from modelpress.format import from_bytes
from tests.format.forge import fix_segment_crcs, index_of, join_file, sample_file, set_index, split_file

VALID = sample_file()
HEADER, SECTION = split_file(VALID)
N = int.from_bytes(VALID[:8], "little")


def with_header(edit, fix_crc: bool = True) -> bytes:
    """Apply ``edit(header)`` to a copy of the header object (repairing the header checksum)."""
    header = copy.deepcopy(HEADER)
    edit(header)
    if fix_crc:
        set_index(header, index_of(header))
    return join_file(header, SECTION)


def with_index(edit) -> bytes:
    """Apply ``edit(index)`` (the parsed modelpress.tensors list), repair the header checksum."""
    header = copy.deepcopy(HEADER)
    index = index_of(header)
    edit(index)
    return join_file(set_index(header, index), SECTION)


def entry(index, name):
    return next(e for e in index if e["name"] == name)


def set_entry(name, key, value):
    def edit(index):
        entry(index, name)[key] = value
    return edit


def shift_offsets(name, delta_begin, delta_end):
    def edit(index):
        e = entry(index, name)
        e["offsets"] = [e["offsets"][0] + delta_begin, e["offsets"][1] + delta_end]
    return edit


def set_chain(name, *path_and_value):
    *path, value = path_and_value

    def edit(index):
        node = entry(index, name)["chain"]
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


def flip_payload_byte(name, fix: bool) -> bytes:
    index = index_of(HEADER)
    begin = entry(index, name)["offsets"][0]
    section = bytearray(SECTION)
    section[begin] ^= 0x5A
    data = VALID[:8 + N] + bytes(section)
    return fix_segment_crcs(data) if fix else data


def nonzero_padding() -> bytes:
    index = index_of(HEADER)
    e = next(e for e in index if e["offsets"][1] - e["offsets"][0] > e["nbytes"])
    section = bytearray(SECTION)
    section[e["offsets"][1] - 1] = 1
    return fix_segment_crcs(VALID[:8 + N] + bytes(section))


def header_text(text: bytes) -> bytes:
    text += b" " * (-(8 + len(text)) % 8)
    return len(text).to_bytes(8, "little") + text + SECTION


def metadata_edit(key, value):
    def edit(header):
        if value is KeyError:
            del header["__metadata__"][key]
        else:
            header["__metadata__"][key] = value
    return edit


def huffman_oversubscribed() -> bytes:
    """Corrupt the code-length table of the Huffman stream and repair the CRCs: the decoder itself must object."""
    index = index_of(HEADER)
    e = entry(index, "levels")
    codebook_bytes = e["chain"]["nbytes"]
    section = bytearray(SECTION)
    section[e["offsets"][0] + codebook_bytes] = 0x11  # two symbols of length 1 plus the others: Kraft sum > 1
    return fix_segment_crcs(VALID[:8 + N] + bytes(section))


ATTACKS = {
    "empty file": (b"", r"expected a file of at least 8 bytes, got 0"),
    "truncated in the length": (VALID[:5], r"expected a file of at least 8 bytes, got 5"),
    "truncated in the header": (VALID[:8 + N // 2], r"expected a header length of at most \d+ .*got \d+"),
    "truncated in the data": (VALID[:-9], r"(expected end <= \d+ \(the data section's length\)|segments covering)"),
    "header length beyond the file": ((len(VALID)).to_bytes(8, "little") + VALID[8:],
                                      r"expected a header length of at most \d+"),
    "header length 2**64-1": (b"\xff" * 8 + VALID[8:], r"expected a header length of at most"),
    "header length 0": (b"\0" * 8 + VALID[8:], r"expected a header length of at least 2, got 0"),
    "misaligned header": ((N + 1).to_bytes(8, "little") + VALID[8:8 + N] + b" " + SECTION,
                          r"expected 8 \+ header length a multiple of 8"),
    "bad JSON": (header_text(b'{"__metadata__":{"a":"b"},}'), r"header: expected valid JSON"),
    "header not an object": (header_text(b"[1, 2, 3]"), r"expected a JSON object followed only by spaces"),
    "tab in the padding": (VALID[:8 + N - 1] + b"\t" + SECTION, r"expected a JSON object followed only by spaces"),
    "invalid UTF-8": (header_text(b'{"\xff":1}'), r"expected a UTF-8 header"),
    "duplicate keys": (header_text(b'{"__metadata__":{},"__metadata__":{}}'),
                       r"expected JSON without duplicate keys, got <'__metadata__' twice>"),
    "NaN in the header": (header_text(b'{"__metadata__":{},"x":NaN}'), r"non-standard JSON value NaN"),
    "deep nesting": (header_text(b'{"x":' + b"[" * 100000 + b"]" * 100000 + b"}"),
                     r"expected JSON of reasonable nesting depth"),
    "no __metadata__": (header_text(b'{"x":{}}'), r"__metadata__: expected an object of strings, got <NoneType>"),
    "metadata value not a string": (with_header(metadata_edit("other", 5), fix_crc=False),
                                    r"__metadata__\['other'\]: expected a string \(safetensors metadata\), got <int>"),
    "missing checksum": (with_header(metadata_edit("modelpress.crc32", KeyError), fix_crc=False),
                         r"__metadata__: expected the key 'modelpress.crc32', got <nothing>"),
    "unknown modelpress key": (with_header(metadata_edit("modelpress.extra", "1"), fix_crc=False),
                               r"expected modelpress keys among .*got 'modelpress.extra'"),
    "wrong version": (with_header(metadata_edit("modelpress.version", "2"), fix_crc=False),
                      r"modelpress.version: expected format version 1, got '2'. Fix: the file needs another"),
    "header checksum mismatch": (with_header(metadata_edit("modelpress.model", '{"arch":"evil"}'), fix_crc=False),
                                 r"header checksum: expected CRC-32 '[0-9a-f]{8}' as stored, got <[0-9a-f]{8}>"),
    "index not a list": (join_file(set_index(copy.deepcopy(HEADER), {"a": 1}), SECTION),
                         r"modelpress.tensors: expected a JSON array, got <dict>"),
    "model not an object": (with_header(lambda h: h["__metadata__"].update({"modelpress.model": "[1]"})),
                            r"modelpress.model: expected a JSON object, got <list>"),
    "entry missing a key": (with_index(lambda index: index[0].pop("crc32")),
                            r"tensors\[0\]: expected an object with keys name, dtype, shape"),
    "unknown dtype": (with_index(set_entry("fc.bias", "dtype", "float8")),
                      r"tensor 'fc.bias'.dtype: expected one of float32, .*got 'float8'"),
    "negative dimension": (with_index(set_entry("fc.bias", "shape", [-12])),
                           r"tensor 'fc.bias'.shape: expected a dimension \(an integer >= 0\), got -12"),
    "float dimension": (with_index(set_entry("fc.bias", "shape", [12.0])),
                        r"tensor 'fc.bias'.shape: expected a dimension \(an integer >= 0\), got 12"),
    "17 dimensions": (with_index(set_entry("fc.bias", "shape", [1] * 17)),
                      r"tensor 'fc.bias'.shape: expected a list of at most 16 dimensions"),
    "absurd declared shape": (with_index(set_entry("fc.weight", "shape", [10**6, 10**6])),
                              r"tensor 'fc.weight': expected at most \d+ decoded bytes for a payload of \d+ bytes"),
    "shape disagrees with the chain": (with_index(set_entry("fc.bias", "shape", [13])),
                                       r"tensor 'fc.bias' chain \(dense\): expected nbytes = 52"),
    "overlapping offsets": (with_index(shift_offsets("fc.bias", -8, 0)),
                            r"tensor 'fc.bias'.offsets: expected begin = \d+ .*overlapping the previous segment"),
    "gap between segments": (with_index(shift_offsets("fc.bias", 8, 8)),
                             r"tensor 'fc.bias'.offsets: expected begin = \d+ .*leaving a gap"),
    "offsets out of range": (with_index(lambda index: index[-1].update(
        offsets=[index[-1]["offsets"][0], index[-1]["offsets"][1] + 800], nbytes=index[-1]["nbytes"] + 800)),
        r"expected end <= \d+ \(the data section's length\)"),
    "segment not a multiple of 8": (with_index(shift_offsets("fc.weight", 0, -1)),
                                    r"tensor 'fc.weight'.offsets: expected end >= begin with a length that is a mul"),
    "nbytes beyond the segment": (with_index(set_entry("fc.bias", "nbytes", 49)),
                                  r"tensor 'fc.bias'.nbytes: expected a payload length in \[41, 48\]"),
    "bad crc32 string": (with_index(set_entry("fc.bias", "crc32", "XYZ")),
                         r"tensor 'fc.bias'.crc32: expected 8 lowercase hex digits, got 'XYZ'"),
    "duplicate names": (with_index(set_entry("fc.bias", "name", "fc.weight")),
                        r"tensor 'fc.weight': expected unique tensor names"),
    "reserved name": (with_index(set_entry("fc.bias", "name", "__metadata__")),
                      r"tensors\[1\].name: expected a string of 1 to 1024 characters, not '__metadata__'"),
    "safetensors entry disagrees": (with_header(lambda h: h["fc.bias"].update(data_offsets=[0, 48])),
                                    r"tensor 'fc.bias' \(safetensors entry\): expected"),
    "safetensors entry float shape": (with_header(lambda h: h["fc.bias"].update(shape=[48.0])),
                                      r"tensor 'fc.bias' \(safetensors entry\): expected"),
    "safetensors entry missing": (with_header(lambda h: h.pop("fc.bias")),
                                  r"tensor 'fc.bias': expected a safetensors entry for the tensor, got <nothing>"),
    "unindexed safetensors entry": (with_header(lambda h: h.update(extra={"dtype": "U8", "shape": [0],
                                                                          "data_offsets": [0, 0]})),
                                    r"expected a safetensors entry per indexed tensor and no others"),
    "trailing bytes": (VALID + b"\0" * 8, r"expected segments covering the whole data section of \d+ bytes"),
    "unknown codec": (with_index(set_chain("fc.bias", "codec", "lzma")),
                      r"tensor 'fc.bias' chain: expected codec one of ans, bitpack, .*got 'lzma'"),
    "absurd count in a chain": (with_index(set_chain("fc.weight", "entries", 10**12)),
                                r"tensor 'fc.weight' chain \(sparse\): expected entries in \[0, 192\]"),
    "chain lengths do not add up": (with_index(set_chain("levels", "children", "indices", "nbytes", 10**6)),
                                    r"tensor 'levels' chain: expected own-data lengths adding up to nbytes"),
    "payload bit flip": (flip_payload_byte("fc.bias", fix=False),
                         r"tensor 'fc.bias' payload: expected CRC-32 '[0-9a-f]{8}' as indexed"),
    "nonzero padding": (nonzero_padding(), r"payload: expected zero padding after the payload, got <nonzero bytes>"),
    "oversubscribed Huffman code": (huffman_oversubscribed(),
                                    r"tensor 'levels' chain.indices \(huffman\): expected code lengths forming a "
                                    r"complete prefix code"),
}


def test_the_forged_base_file_is_valid():
    tensors, model = from_bytes(join_file(copy.deepcopy(HEADER), SECTION))
    assert model == {"arch": "sample", "layers": [12, 16]} and len(tensors) == 8


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_is_rejected_with_its_message(name):
    data, message = ATTACKS[name]
    with pytest.raises(FormatError, match=message):
        from_bytes(data, "file")


def test_attack_files_on_disk_report_the_path(tmp_path):
    from modelpress.format import read_file
    path = tmp_path / "bad.mpz"
    path.write_bytes(ATTACKS["wrong version"][0])
    with pytest.raises(FormatError, match=rf"file '{path}': modelpress.version: expected format version 1"):
        read_file(path)
    path.write_bytes(json.dumps({"a": 1}).encode())
    with pytest.raises(FormatError, match=r"expected a header length of at most"):
        read_file(path)

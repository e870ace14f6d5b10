"""meta.json: the contract between prepare.py, which writes a data directory, and its readers.

A data directory holds train.bin and val.bin, flat arrays of uint16 GPT-2 token ids in which
every document is written as EOT followed by its tokens, and meta.json:

    {"format": "plateau-tokens", "format_version": 1,
     "tokenizer": "gpt2", "vocab_size": 50257, "eot_token": 50256, "dtype": "uint16",
     "doc_convention": "eot_prefix",
     "splits": {"train": {"file": "train.bin", "documents": N, "tokens": N},
                "val":   {"file": "val.bin",   "documents": N, "tokens": N}},
     "skipped_documents": N, "duplicate_documents": N, "dedup": false,
     "token_count_check": {"column": "token_count", "documents": N, "ours": N, "theirs": N,
                           "mismatched_documents": N} or null,
     "sources": [{"path": "...", "bytes": N, "rows": N}],
     "val_fraction": 0.01, "split_rule": "...", "prepare_version": "...", "args": {...}}

`tokens` counts include the EOT tokens. skipped_documents had null or blank text;
duplicate_documents are exact repeats of an earlier text, removed only when dedup is true;
token_count_check compares our counts (EOT excluded) with a token_count column when the input
has one.
"""

import json
import os

import numpy as np

from plateau.cli import UsageError, write_text_atomic

FORMAT = "plateau-tokens"
FORMAT_VERSION = 1
META_FILE = "meta.json"
DTYPE = "uint16"
MAX_VOCAB_SIZE = np.iinfo(np.uint16).max  # ids are stored as uint16
DOC_CONVENTION = "eot_prefix"
SPLITS = ("train", "val")
KEYS = (
    "format", "format_version", "tokenizer", "vocab_size", "eot_token", "dtype", "doc_convention",
    "splits", "skipped_documents", "duplicate_documents", "dedup", "token_count_check", "sources",
    "val_fraction", "split_rule", "prepare_version", "args",
)
SPLIT_KEYS = ("file", "documents", "tokens")


def check_vocab_size(vocab_size):
    if vocab_size > MAX_VOCAB_SIZE:
        raise UsageError(f"vocab_size {vocab_size} does not fit {DTYPE} (at most {MAX_VOCAB_SIZE})")


def write_meta(out_dir, meta):
    """Write out_dir/meta.json atomically; `meta` holds exactly KEYS."""
    assert set(meta) == set(KEYS), set(meta) ^ set(KEYS)
    write_text_atomic(os.path.join(out_dir, META_FILE), json.dumps(meta, indent=2) + "\n")


def read_meta(data_dir, check_bins=True):
    """meta.json of data_dir as a dict, after checking it (and, with check_bins, the .bin sizes beside it).

    diagnose.py passes check_bins=False: a meta.json copied off the training machine is enough for its facts.
    """
    path = os.path.join(data_dir, META_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise UsageError(f"no {META_FILE} in {data_dir} (run prepare.py --out-dir {data_dir})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {path}: {e}") from None
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"{path} is not valid JSON: {e.msg} at line {e.lineno}") from None
    if not isinstance(meta, dict):
        raise UsageError(f"{path} holds a JSON {type(meta).__name__}, not an object")
    missing = [k for k in KEYS if k not in meta]
    if missing:
        raise UsageError(f"{path} lacks {', '.join(missing)}; re-run prepare.py")
    if (meta["format"], meta["format_version"]) != (FORMAT, FORMAT_VERSION):
        raise UsageError(
            f"{path} is format {meta['format']!r} version {meta['format_version']!r}; "
            f"this code reads {FORMAT!r} version {FORMAT_VERSION}"
        )
    if meta["dtype"] != DTYPE:
        raise UsageError(f"{path}: dtype {meta['dtype']!r} is not supported (only {DTYPE})")
    if meta["doc_convention"] != DOC_CONVENTION:
        raise UsageError(f"{path}: doc_convention {meta['doc_convention']!r} is not {DOC_CONVENTION!r}")
    vocab, eot = meta["vocab_size"], meta["eot_token"]
    if not _is_count(vocab) or vocab == 0:
        raise UsageError(f"{path}: vocab_size {vocab!r} is not a positive integer")
    check_vocab_size(vocab)
    if not _is_count(eot) or eot >= vocab:
        raise UsageError(f"{path}: eot_token {eot!r} is not an id below vocab_size {vocab}")
    for split in SPLITS:
        _check_split(data_dir, path, split, meta["splits"], check_bins)
    return meta


def _is_count(x):
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _check_split(data_dir, path, split, splits, check_bins):
    s = splits.get(split) if isinstance(splits, dict) else None
    if not isinstance(s, dict) or any(k not in s for k in SPLIT_KEYS):
        raise UsageError(f"{path}: splits.{split} needs {', '.join(SPLIT_KEYS)}")
    name, docs, tokens = s["file"], s["documents"], s["tokens"]
    if not isinstance(name, str) or os.path.basename(name) != name or not name:
        raise UsageError(f"{path}: splits.{split}.file {name!r} is not a file name")
    if not (_is_count(docs) and _is_count(tokens)) or docs == 0 or tokens < docs:
        raise UsageError(f"{path}: splits.{split} has {docs!r} documents and {tokens!r} tokens")
    if not check_bins:
        return
    bin_path = os.path.join(data_dir, name)
    try:
        size = os.path.getsize(bin_path)
    except OSError:
        raise UsageError(f"{bin_path} is missing; re-run prepare.py --out-dir {data_dir} --force") from None
    itemsize = np.dtype(DTYPE).itemsize
    if size != tokens * itemsize:
        raise UsageError(
            f"{bin_path} has {size} bytes but {META_FILE} says {tokens} tokens ({tokens * itemsize} bytes); "
            f"re-run prepare.py --out-dir {data_dir} --force"
        )


def open_split(data_dir, split, meta):
    """Read-only memmap of one split's tokens, shape (tokens,); `meta` comes from read_meta."""
    s = meta["splits"][split]
    return np.memmap(os.path.join(data_dir, s["file"]), dtype=DTYPE, mode="r", shape=(s["tokens"],))

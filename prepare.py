"""Tokenize parquet text (FineWeb's schema) into train.bin, val.bin and meta.json for train.py.

    python prepare.py --sample --out-dir data/sample
    python prepare.py fineweb/000_00000.parquet --out-dir data/fineweb
    python prepare.py 'fineweb/*.parquet' --out-dir data/fineweb --dedup --workers 8 --force
    python prepare.py notes/ --out-dir data/notes --text-column body --val-fraction 0.05

Every document becomes EOT followed by its GPT-2 tokens, appended to train.bin or val.bin as
uint16. A document's split comes from a salted hash of its id (of its text where there is no
id), so it depends neither on file order nor on --workers, and the .bin files are byte-identical
for any worker count. Outputs go to temporary files in --out-dir, renamed at the end with
meta.json last: a killed run leaves the previous outputs as they were.
"""

import argparse
import collections
import contextlib
import glob
import hashlib
import importlib
import inspect
import multiprocessing
import os
import pkgutil
import signal
import sys
import time
import uuid
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import plateau.cli
from plateau import meta, tokenizer
from plateau.cli import UsageError, atomic_path, check_writable_dir

PREPARE_VERSION = "1"  # bump when the same input and flags would give different .bin files
OUTPUTS = ("train.bin", "val.bin", meta.META_FILE)
TASK_CHARS = 1 << 18  # text per worker task: ~60k tokens, tens of ms, so IPC stays a few percent
SPLIT_RULE = (
    "val iff blake2b(f'{seed}:{key}', digest_size=8) as a little-endian integer < val_fraction * 2**64; "
    "key is the document's id, or the hex blake2b-64 of its UTF-8 text where there is no id"
)

SAMPLE_FILE = "sample.parquet"
# Modules that act when imported (a browser, a poem, a grammar cache, terminal setup), need a display,
# are the test suite, repeat one docstring 100 times (codecs), or differ by venv (setuptools shims distutils).
SAMPLE_SKIP = {"antigravity", "this", "lib2to3", "readline", "rlcompleter", "idlelib", "tkinter", "turtle",
               "turtledemo", "test", "encodings", "distutils", "pydoc_data"}  # pydoc_data: read directly
SAMPLE_DOC_CHARS = 8000  # about 2k GPT-2 tokens: a section-sized page
SAMPLE_MIN_CHARS = 800  # about 200 tokens: drop stub pages
SAMPLE_ROW_GROUP = 64  # rows; several row groups, like a real shard
SAMPLE_SCHEMA = pa.schema([
    ("text", pa.string()), ("id", pa.string()), ("dump", pa.string()), ("url", pa.string()),
    ("date", pa.string()), ("file_path", pa.string()), ("language", pa.string()),
    ("language_score", pa.float64()), ("token_count", pa.int64()),
])


def _stdlib_modules():
    """Importable stdlib modules and their public submodules, sorted by name."""
    names = []
    for name in sorted(sys.stdlib_module_names):
        if name.startswith("_") or name in SAMPLE_SKIP:
            continue
        with contextlib.suppress(ImportError):
            mod = importlib.import_module(name)
            names.append(name)
            for sub in sorted(i.name for i in pkgutil.iter_modules(getattr(mod, "__path__", []))):
                if not (sub.startswith("_") or "test" in sub):
                    names.append(f"{name}.{sub}")
    for name in names:
        with contextlib.suppress(ImportError):
            yield importlib.import_module(name)


def _module_text(mod):
    """A module's docstring, then those of its classes, functions and methods (dunders aside)."""
    parts = [f"{mod.__name__}\n{'=' * len(mod.__name__)}", inspect.cleandoc(mod.__doc__ or "")]
    for name, obj in sorted(vars(mod).items()):
        if name.startswith("__") or getattr(obj, "__module__", None) != mod.__name__:
            continue
        if not (inspect.isclass(obj) or inspect.isroutine(obj)):
            continue
        members = [(name, obj)]
        if inspect.isclass(obj):
            members += [(f"{name}.{k}", v) for k, v in sorted(vars(obj).items())
                        if not k.startswith("__") and (inspect.isroutine(v) or isinstance(v, property))]
        for qualname, member in members:
            doc = getattr(member, "__doc__", None)
            if isinstance(doc, str) and doc.strip():
                parts.append(f"{mod.__name__}.{qualname}\n\n{inspect.cleandoc(doc)}")
    return "\n\n".join(parts)


def _pages(text):
    """Split text at paragraph breaks into pages of about SAMPLE_DOC_CHARS."""
    page = ""
    for para in text.split("\n\n"):
        if page and len(page) + len(para) > SAMPLE_DOC_CHARS:
            yield page
            page = ""
        page = f"{page}\n\n{para}" if page else para
    yield page


def sample_documents():
    """(url, text) pairs: the language reference topics, then stdlib docstrings by module."""
    from pydoc_data.topics import topics

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated modules warn when imported
        texts = [(f"https://docs.python.org/3/reference/{t}.html", topics[t]) for t in sorted(topics)]
        texts += [(f"https://docs.python.org/3/library/{m.__name__}.html", _module_text(m))
                  for m in _stdlib_modules()]
    return [(url, page) for url, text in texts for page in _pages(text) if len(page) >= SAMPLE_MIN_CHARS]


def build_sample(path, copies=1):
    """Write a parquet with FineWeb's schema, the same bytes on every run of the same Python.

    copies > 1 repeats the documents with fresh ids, for inputs of a chosen size.
    """
    docs = sample_documents()
    enc = tokenizer.get_encoding()
    counts = [len(t) for t in enc.encode_ordinary_batch([t for _, t in docs], num_threads=default_workers())]
    warc = ("s3://commoncrawl/crawl-data/CC-MAIN-2013-20/segments/1368696381249/warc/"
            "CC-MAIN-20130516092621-{:05d}-ip-10-60-113-184.ec2.internal.warc.gz")
    rows = []
    for copy in range(copies):
        for i, ((url, text), count) in enumerate(zip(docs, counts, strict=True)):
            digest = hashlib.sha256(f"{copy}\n{url}\n{i}\n{text}".encode()).digest()
            seconds = int.from_bytes(digest[16:20], "little") % (14 * 86400)  # in May 2013, that crawl
            date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1368230400 + seconds))
            rows.append({"text": text, "id": f"<urn:uuid:{uuid.UUID(bytes=digest[:16], version=4)}>",
                         "dump": "CC-MAIN-2013-20", "url": url, "date": date,
                         "file_path": warc.format(len(rows) // 1000), "language": "en",
                         "language_score": 0.85 + digest[20] / 2550, "token_count": count})
    table = pa.Table.from_pylist(rows, schema=SAMPLE_SCHEMA)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, row_group_size=SAMPLE_ROW_GROUP)
    return path


def resolve_inputs(inputs):
    """Parquet paths named by INPUT arguments: files, directories (their *.parquet) or globs."""
    paths = []
    for arg in inputs:
        if os.path.isdir(arg):
            found = sorted(glob.glob(os.path.join(glob.escape(arg), "*.parquet")))
            why = f"no *.parquet in {arg}"
        elif os.path.exists(arg):
            found, why = [arg], ""
        elif any(c in arg for c in "*?["):
            found, why = sorted(glob.glob(arg)), f"no file matches {arg}"
        else:
            found, why = [], f"no such file or directory: {arg}"
        if not found:
            raise UsageError(why)
        paths += found
    return paths


Source = collections.namedtuple("Source", "path file columns rows bytes")


def open_source(path, text_column):
    """Open one parquet and check its schema; columns maps text/id/token_count to names or None."""
    try:
        # pre_buffer caches every column chunk read so far: memory would grow with the file
        pf = pq.ParquetFile(path, pre_buffer=False)
    except (pa.ArrowException, OSError) as e:
        raise UsageError(f"{path}: not a readable parquet file ({str(e).splitlines()[0]})") from None
    schema = pf.schema_arrow
    if text_column not in schema.names:
        raise UsageError(f"{path} has no column {text_column!r} (columns: {', '.join(schema.names)}); "
                         "pick one with --text-column")
    t = schema.field(text_column).type
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        raise UsageError(f"{path}: column {text_column!r} has type {t}, not string")
    if pf.metadata.num_rows == 0:
        raise UsageError(f"{path} is empty (0 rows)")
    columns = {"text": text_column}
    for name, usable in (("id", pa.types.is_string), ("token_count", pa.types.is_integer)):
        columns[name] = name if name in schema.names and usable(schema.field(name).type) else None
    return Source(path, pf, columns, pf.metadata.num_rows, os.path.getsize(path))


def read_tasks(sources, batch_rows, seed, val_fraction, stats):
    """Yield (payload for encode_chunk, token_count values) per ~TASK_CHARS of text, in input order.

    Blank texts are counted in stats["skipped"] and not yielded.
    """
    texts, ids, counts, chars = [], [], [], 0
    for src in sources:
        names = list(dict.fromkeys(n for n in src.columns.values() if n))
        for batch in src.file.iter_batches(batch_size=batch_rows, columns=names):
            col = batch.to_pydict()
            none = [None] * batch.num_rows
            rows = zip(col[src.columns["text"]], col.get(src.columns["id"], none),
                       col.get(src.columns["token_count"], none), strict=True)
            for text, doc_id, count in rows:
                if not text or text.isspace():
                    stats["skipped"] += 1
                    continue
                texts.append(text)
                ids.append(doc_id)
                counts.append(count)
                chars += len(text)
                if chars >= TASK_CHARS:
                    yield (texts, ids, seed, val_fraction), counts
                    texts, ids, counts, chars = [], [], [], 0
    if texts:
        yield (texts, ids, seed, val_fraction), counts


def _hash64(data):
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def encode_chunk(payload):
    """Tokenize one task; returns (tokens, lengths, text_hashes, is_val), one entry per document.

    tokens: (sum(lengths),) uint16, each document EOT then its tokens; lengths include the EOT.
    """
    texts, ids, seed, val_fraction = payload
    enc = tokenizer.get_encoding()
    eot = np.array([tokenizer.EOT], dtype=np.uint32)
    threshold = val_fraction * 2**64
    parts, lengths, hashes, is_val = [], [], [], []
    for text, doc_id in zip(texts, ids, strict=True):
        text_hash = _hash64(text.encode())
        key = doc_id if doc_id is not None else text_hash.to_bytes(8, "little").hex()
        # encode_ordinary without its Python list (~10% faster); special-token text stays plain text
        tokens = enc.encode_to_numpy(text, disallowed_special=())
        parts += (eot, tokens)
        lengths.append(len(tokens) + 1)
        hashes.append(text_hash)
        is_val.append(_hash64(f"{seed}:{key}".encode()) < threshold)
    return (np.concatenate(parts).astype(np.uint16), np.array(lengths, dtype=np.int64),
            np.array(hashes, dtype=np.uint64), np.array(is_val, dtype=bool))


def encode_in_order(tasks, workers):
    """Yield (encode_chunk(payload), side) for each (payload, side) in order.

    At most 2 * workers tasks are in flight: Pool.imap would read ahead through the whole input.
    """
    if workers == 1:
        for payload, side in tasks:
            yield encode_chunk(payload), side
        return
    # Ctrl-C reaches the whole process group: workers ignore it, main reports it in one line.
    ignore_sigint = (signal.SIGINT, signal.SIG_IGN)
    with multiprocessing.Pool(workers, initializer=signal.signal, initargs=ignore_sigint) as pool:
        pending = collections.deque()
        for payload, side in tasks:
            pending.append((pool.apply_async(encode_chunk, (payload,)), side))
            if len(pending) >= 2 * workers:
                result, side = pending.popleft()
                yield result.get(), side
        while pending:
            result, side = pending.popleft()
            yield result.get(), side


def default_workers():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Tokenize parquet text with GPT-2 BPE into train.bin / val.bin / meta.json.",
        epilog="Columns 'id' (the split key) and 'token_count' (cross-checked) are used when present. "
               "Re-running with the same inputs and flags gives byte-identical outputs.")
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="a parquet file, a directory (its *.parquet, sorted) or a quoted glob; several ok")
    p.add_argument("--out-dir", required=True, help="directory for train.bin, val.bin, meta.json (created)")
    p.add_argument("--sample", action="store_true",
                   help=f"write OUT_DIR/{SAMPLE_FILE} (Python's docs in FineWeb's schema, ~0.5M tokens) "
                        "and prepare it; takes no INPUT")
    p.add_argument("--text-column", default="text", help="column of document texts (default: %(default)s)")
    p.add_argument("--workers", type=int, default=default_workers(),
                   help="tokenizer processes (default: all cores, here %(default)s)")
    p.add_argument("--val-fraction", type=float,
                   help="expected fraction of documents in val (default: 0.01, or 0.05 with --sample)")
    p.add_argument("--seed", type=int, default=1337,
                   help="salt of the split hash; another seed draws another split (default: %(default)s)")
    p.add_argument("--dedup", action="store_true",
                   help="drop exact repeats of an earlier text (repeats are counted either way)")
    p.add_argument("--force", action="store_true", help="replace existing train.bin, val.bin and meta.json")
    p.add_argument("--batch-rows", type=int, default=1024,
                   help="rows per parquet record batch read; bounds memory (default: %(default)s)")
    args = p.parse_args(argv)
    if args.sample == bool(args.inputs):
        raise UsageError("--sample takes no INPUT" if args.sample else "give INPUT files or --sample")
    if args.val_fraction is None:
        args.val_fraction = 0.05 if args.sample else 0.01
    if not 0 < args.val_fraction < 1:
        raise UsageError(f"--val-fraction {args.val_fraction} is not between 0 and 1")
    if args.workers < 1 or args.batch_rows < 1:
        raise UsageError("--workers and --batch-rows must be at least 1")
    return args


def claim_out_dir(out_dir, force):
    check_writable_dir(out_dir)
    existing = [n for n in OUTPUTS if os.path.exists(os.path.join(out_dir, n))]
    if existing and not force:
        raise UsageError(f"{out_dir} already has {', '.join(existing)}; pass --force to replace")
    # Temporaries of a run killed before its renames; a second prepare into one directory is already a race.
    for name in (*OUTPUTS, SAMPLE_FILE):
        for stale in glob.glob(os.path.join(glob.escape(out_dir), f".{name}.*.tmp")):
            print(f"removing {stale}, left by an interrupted run", file=sys.stderr)
            os.remove(stale)


def write_splits(args, sources, t0):
    """Tokenize every source into train.bin and val.bin; returns the counts meta.json reports."""
    from tqdm import tqdm

    n = {"skipped": 0, "duplicates": 0, "documents": collections.Counter(), "tokens": collections.Counter()}
    check = collections.Counter() if any(s.columns["token_count"] for s in sources) else None
    seen = set()  # 64-bit text hashes: ~60 bytes each, ~60 MB per million distinct documents
    bar = tqdm(total=sum(s.rows for s in sources), unit="doc", disable=not sys.stderr.isatty())
    with contextlib.ExitStack() as stack:
        files = {}
        for split in meta.SPLITS:
            tmp = stack.enter_context(atomic_path(os.path.join(args.out_dir, f"{split}.bin")))
            files[split] = stack.enter_context(open(tmp, "wb"))
        tasks = read_tasks(sources, args.batch_rows, args.seed, args.val_fraction, n)
        for (tokens, lengths, hashes, is_val), counts in encode_in_order(tasks, args.workers):
            keep = np.ones(len(lengths), dtype=bool)
            for i, h in enumerate(hashes.tolist()):
                if h in seen:
                    n["duplicates"] += 1
                    keep[i] = not args.dedup
                seen.add(h)
            if check is not None:
                theirs = np.array([-1 if c is None else c for c in counts], dtype=np.int64)
                known, ours = theirs >= 0, lengths - 1
                check.update(documents=int(known.sum()), ours=int(ours[known].sum()),
                             theirs=int(theirs[known].sum()),
                             mismatched_documents=int((ours != theirs)[known].sum()))
            for split, docs in (("train", keep & ~is_val), ("val", keep & is_val)):
                if docs.any():
                    part = tokens if docs.all() else tokens[np.repeat(docs, lengths)]
                    files[split].write(memoryview(part))
                    n["documents"][split] += int(docs.sum())
                    n["tokens"][split] += int(lengths[docs].sum())
            bar.update(len(lengths))
            if not bar.disable:
                bar.set_postfix_str(f"{n['tokens'].total() / (time.perf_counter() - t0):,.0f} tok/s")
        bar.update(n["skipped"])
        bar.close()
        if not n["documents"]:
            raise UsageError(f"all {n['skipped']} texts in column {args.text_column!r} are empty")
        for split in meta.SPLITS:
            if not n["documents"][split]:
                raise UsageError(f"the {split} split would be empty ({n['documents'].total()} documents, "
                                 f"--val-fraction {args.val_fraction}); add data or change --val-fraction")
        # A crash between the renames below must not pair new .bin files with the old meta.json.
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(args.out_dir, meta.META_FILE))
    keys = ("documents", "ours", "theirs", "mismatched_documents")
    n["check"] = None if check is None else {"column": "token_count", **{k: check[k] for k in keys}}
    return n


def main(argv=None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    paths = [] if args.sample else resolve_inputs(args.inputs)
    sources = [open_source(p, args.text_column) for p in paths]
    claim_out_dir(args.out_dir, args.force)
    meta.check_vocab_size(tokenizer.VOCAB_SIZE)
    tokenizer.get_encoding()  # fetch the ranks once, before workers fork
    if args.sample:
        sources = [open_source(build_sample(os.path.join(args.out_dir, SAMPLE_FILE)), args.text_column)]
    n = write_splits(args, sources, t0)
    meta.write_meta(args.out_dir, {
        "format": meta.FORMAT, "format_version": meta.FORMAT_VERSION,
        "tokenizer": tokenizer.NAME, "vocab_size": tokenizer.VOCAB_SIZE, "eot_token": tokenizer.EOT,
        "dtype": meta.DTYPE, "doc_convention": meta.DOC_CONVENTION,
        "splits": {s: {"file": f"{s}.bin", "documents": n["documents"][s], "tokens": n["tokens"][s]}
                   for s in meta.SPLITS},
        "skipped_documents": n["skipped"], "duplicate_documents": n["duplicates"], "dedup": args.dedup,
        "token_count_check": n["check"],
        "sources": [{"path": os.path.abspath(s.path), "bytes": s.bytes, "rows": s.rows} for s in sources],
        "val_fraction": args.val_fraction, "split_rule": SPLIT_RULE, "prepare_version": PREPARE_VERSION,
        "args": vars(args),
    })
    elapsed, total = time.perf_counter() - t0, n["tokens"].total()
    for s in meta.SPLITS:
        print(f"{s:5} {n['tokens'][s]:>13,} tokens {n['documents'][s]:>10,} documents -> "
              f"{os.path.join(args.out_dir, s + '.bin')}")
    dropped = "removed" if args.dedup else "kept; --dedup removes them"
    print(f"skipped {n['skipped']:,} empty documents; {n['duplicates']:,} exact duplicates ({dropped})")
    check = n["check"]
    if check and check["mismatched_documents"]:
        print(f"warning: {check['mismatched_documents']:,} of {check['documents']:,} documents disagree "
              f"with column token_count (ours {check['ours']:,}, theirs {check['theirs']:,})")
    print(f"{total:,} tokens in {elapsed:.1f} s ({total / elapsed:,.0f} tokens/s, {args.workers} workers)")
    return 0


if __name__ == "__main__":
    sys.exit(plateau.cli.run(main))

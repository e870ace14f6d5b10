"""prepare.py end to end (by subprocess), and the meta.json contract it writes (plateau.meta)."""

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from plateau import meta, tokenizer
from plateau.cli import UsageError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREPARE = os.path.join(ROOT, "prepare.py")
FINEWEB_SCHEMA = pa.schema([
    ("text", pa.string()), ("id", pa.string()), ("dump", pa.string()), ("url", pa.string()),
    ("date", pa.string()), ("file_path", pa.string()), ("language", pa.string()),
    ("language_score", pa.float64()), ("token_count", pa.int64()),
])


def prepare(*args, check=True):
    proc = subprocess.run([sys.executable, PREPARE, *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def write_parquet(path, texts, **columns):
    pq.write_table(pa.table({"text": pa.array(texts, pa.string()), **columns}), path)
    return path


def decoded_docs(data_dir, split):
    """Texts of one split, cut at the EOT that opens every document."""
    tokens = meta.open_split(data_dir, split, meta.read_meta(data_dir))
    starts = np.flatnonzero(tokens == tokenizer.EOT)
    assert starts[0] == 0
    ends = [*starts[1:], len(tokens)]
    enc = tokenizer.get_encoding()
    return [enc.decode(tokens[a + 1:b].tolist()) for a, b in zip(starts, ends, strict=True)]


def read_bytes(data_dir):
    return {name: (data_dir / name).read_bytes() for name in ("train.bin", "val.bin")}


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample")
    prepare("--sample", "--out-dir", out, "--workers", 2)
    return out


def test_sample_has_fineweb_schema_and_enough_tokens(sample_dir):
    pf = pq.ParquetFile(sample_dir / "sample.parquet")
    assert pf.schema_arrow == FINEWEB_SCHEMA
    assert pf.metadata.num_row_groups > 3
    table = pf.read()
    assert sum(table["token_count"].to_pylist()) >= 500_000
    assert len(set(table["id"].to_pylist())) == table.num_rows
    assert set(table["language"].to_pylist()) == {"en"}
    assert set(table["dump"].to_pylist()) == {"CC-MAIN-2013-20"}
    enc = tokenizer.get_encoding()
    texts, counts = table["text"].to_pylist(), table["token_count"].to_pylist()
    assert [len(t) for t in enc.encode_ordinary_batch(texts)] == counts
    assert min(counts) > 100 and np.median(counts) > 500 and max(counts) < 5000  # section-sized pages


def test_sample_build_and_worker_count_are_deterministic(sample_dir, tmp_path):
    prepare("--sample", "--out-dir", tmp_path, "--workers", 1)
    assert (tmp_path / "sample.parquet").read_bytes() == (sample_dir / "sample.parquet").read_bytes()
    assert read_bytes(tmp_path) == read_bytes(sample_dir)


def test_output_ignores_workers_and_batch_size(sample_dir, tmp_path):
    prepare(sample_dir / "sample.parquet", "--out-dir", tmp_path, "--val-fraction", 0.05,
            "--workers", 3, "--batch-rows", 7)
    assert read_bytes(tmp_path) == read_bytes(sample_dir)


def test_round_trip_gives_back_every_document_in_order(sample_dir):
    texts = pq.read_table(sample_dir / "sample.parquet")["text"].to_pylist()
    splits = {s: decoded_docs(sample_dir, s) for s in meta.SPLITS}
    pos = dict.fromkeys(meta.SPLITS, 0)
    for text in texts:  # each text is the next document of exactly one split
        split = next(s for s in meta.SPLITS if pos[s] < len(splits[s]) and splits[s][pos[s]] == text)
        pos[split] += 1
    assert pos == {s: len(docs) for s, docs in splits.items()}


def test_meta_counts_match_bins_and_token_count_column(sample_dir):
    m = meta.read_meta(sample_dir)
    table = pq.read_table(sample_dir / "sample.parquet")
    docs = sum(m["splits"][s]["documents"] for s in meta.SPLITS)
    tokens = sum(m["splits"][s]["tokens"] for s in meta.SPLITS)
    assert docs == table.num_rows
    assert tokens == sum(table["token_count"].to_pylist()) + docs  # one EOT per document
    for s in meta.SPLITS:
        data = meta.open_split(sample_dir, s, m)
        assert data.dtype == np.uint16 and not data.flags.writeable
        assert os.path.getsize(sample_dir / f"{s}.bin") == 2 * m["splits"][s]["tokens"]
        assert int((data == tokenizer.EOT).sum()) == m["splits"][s]["documents"]
    check = m["token_count_check"]
    assert (check["documents"], check["ours"], check["mismatched_documents"]) == (docs, check["theirs"], 0)
    assert m["val_fraction"] == 0.05 and 0.02 < m["splits"]["val"]["documents"] / docs < 0.09
    assert (m["tokenizer"], m["vocab_size"], m["eot_token"], m["dtype"], m["doc_convention"]) == (
        "gpt2", 50257, 50256, "uint16", "eot_prefix")


def split_of_ids(out_dir):
    """"doc <id>" -> split, for documents whose text starts with "doc <id>: "."""
    return {t.split(": ")[0]: s for s in meta.SPLITS for t in decoded_docs(out_dir, s)}


def test_split_is_by_id_and_ignores_order_and_text(tmp_path):
    n = 3000
    ids = [f"<urn:uuid:{hashlib.md5(str(i).encode()).hexdigest()}>" for i in range(n)]
    rev = ids[::-1]
    write_parquet(tmp_path / "a.parquet", [f"doc {i}: some text {k}" for k, i in enumerate(ids)], id=ids)
    write_parquet(tmp_path / "b.parquet", [f"doc {i}: other words {k} 🙂" for k, i in enumerate(rev)], id=rev)
    for name in ("a", "b"):
        prepare(tmp_path / f"{name}.parquet", "--out-dir", tmp_path / name, "--val-fraction", 0.1)
    prepare(tmp_path / "a.parquet", "--out-dir", tmp_path / "a7", "--val-fraction", 0.1, "--seed", 7)
    a, b, a7 = (split_of_ids(tmp_path / d) for d in ("a", "b", "a7"))
    assert len(a) == n and a == b
    val = sum(s == "val" for s in a.values())
    assert abs(val - 0.1 * n) < 4 * (n * 0.1 * 0.9) ** 0.5  # 4 standard deviations of a binomial
    assert a7 != a  # the seed salts the hash


def test_without_ids_split_follows_text(tmp_path):
    texts = [f"doc {i}: plain text" for i in range(400)]
    write_parquet(tmp_path / "a.parquet", texts)
    write_parquet(tmp_path / "b.parquet", texts[::-1])
    for name in ("a", "b"):
        prepare(tmp_path / f"{name}.parquet", "--out-dir", tmp_path / name, "--val-fraction", 0.2)
    assert split_of_ids(tmp_path / "a") == split_of_ids(tmp_path / "b")
    assert meta.read_meta(tmp_path / "a")["token_count_check"] is None


def test_directory_and_glob_inputs_are_read_in_sorted_order(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    for name in ("b", "a"):
        write_parquet(shards / f"{name}.parquet", [f"doc {name}{i}: text" for i in range(100)])
    prepare(shards, "--out-dir", tmp_path / "dir", "--val-fraction", 0.2)
    prepare(shards / "*.parquet", "--out-dir", tmp_path / "glob", "--val-fraction", 0.2)
    assert read_bytes(tmp_path / "dir") == read_bytes(tmp_path / "glob")
    m = meta.read_meta(tmp_path / "dir")
    assert [os.path.basename(s["path"]) for s in m["sources"]] == ["a.parquet", "b.parquet"]
    assert [s["rows"] for s in m["sources"]] == [100, 100]
    train = decoded_docs(tmp_path / "dir", "train")
    assert train == sorted(train, key=lambda t: t[4])  # every a-document before every b-document


def test_duplicates_are_counted_and_removed_only_with_dedup(tmp_path):
    unique = [f"doc {i}: text with <|endoftext|> inside, 日本語, {i * 7}" for i in range(200)]
    texts = unique + unique[:30] + unique[:5] + ["", None, "  \n\t "]
    path = write_parquet(tmp_path / "d.parquet", texts)
    prepare(path, "--out-dir", tmp_path / "keep", "--val-fraction", 0.3)
    prepare(path, "--out-dir", tmp_path / "dedup", "--val-fraction", 0.3, "--dedup")
    keep, dedup = meta.read_meta(tmp_path / "keep"), meta.read_meta(tmp_path / "dedup")
    for m in (keep, dedup):
        assert (m["duplicate_documents"], m["skipped_documents"]) == (35, 3)
    assert sum(keep["splits"][s]["documents"] for s in meta.SPLITS) == 235
    assert sum(dedup["splits"][s]["documents"] for s in meta.SPLITS) == 200
    assert (keep["dedup"], dedup["dedup"]) == (False, True)
    docs = [d for s in meta.SPLITS for d in decoded_docs(tmp_path / "dedup", s)]
    assert sorted(docs) == sorted(unique)  # the literal "<|endoftext|>" comes back as text


def test_token_count_mismatches_are_reported(tmp_path):
    texts = [f"doc {i}: hello world" for i in range(100)]
    true = [len(tokenizer.get_encoding().encode_ordinary(t)) for t in texts]
    theirs = [c + (1 if i % 10 == 0 else 0) for i, c in enumerate(true)]
    theirs[1] = None
    path = write_parquet(tmp_path / "t.parquet", texts, token_count=pa.array(theirs, pa.int64()))
    proc = prepare(path, "--out-dir", tmp_path / "out", "--val-fraction", 0.3)
    check = meta.read_meta(tmp_path / "out")["token_count_check"]
    assert check == {"column": "token_count", "documents": 99, "ours": sum(true) - true[1],
                     "theirs": sum(true) - true[1] + 10, "mismatched_documents": 10}
    assert "warning: 10 of 99 documents disagree with column token_count" in proc.stdout


def test_killed_run_leaves_previous_outputs_untouched(sample_dir, tmp_path):
    big = tmp_path / "big.parquet"  # 11M tokens: seconds of work to interrupt
    pq.write_table(pa.concat_tables([pq.read_table(sample_dir / "sample.parquet")] * 20), big)
    out = tmp_path / "out"
    shutil.copytree(sample_dir, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = subprocess.Popen([sys.executable, PREPARE, big, "--out-dir", out, "--force", "--workers", "2"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(".train.bin.") and p.stat().st_size for p in out.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, "prepare ended before it was killed"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")} == before
    rerun = prepare(out / "sample.parquet", "--out-dir", out, "--force", "--val-fraction", 0.05)
    assert "left by an interrupted run" in rerun.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(before)  # stale temporaries are gone
    assert read_bytes(out) == read_bytes(sample_dir)


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "notes.txt").write_text("not parquet\n")
    write_parquet(d / "ok.parquet", [f"doc {i}" for i in range(50)])
    write_parquet(d / "blank.parquet", ["", None, "   "])
    write_parquet(d / "empty.parquet", [])
    write_parquet(d / "tiny.parquet", ["one document"])
    pq.write_table(pa.table({"text": [1, 2, 3]}), d / "ints.parquet")
    (d / "nothing").mkdir()
    (d / "a_file").write_text("")
    (d / "done").mkdir()
    (d / "done" / "meta.json").write_text("{}")
    return d


@pytest.mark.parametrize("args, message", [
    (["{d}/missing.parquet"], "no such file or directory: {d}/missing.parquet"),
    (["{d}/notes.txt"], "{d}/notes.txt: not a readable parquet file"),
    (["{d}/ok.parquet", "--text-column", "body"], "has no column 'body' (columns: text)"),
    (["{d}/ints.parquet"], "column 'text' has type int64, not string"),
    (["{d}/empty.parquet"], "{d}/empty.parquet is empty (0 rows)"),
    (["{d}/blank.parquet"], "all 3 texts in column 'text' are empty"),
    (["{d}/tiny.parquet"], "the val split would be empty (1 documents"),
    (["{d}/nothing"], "no *.parquet in {d}/nothing"),
    (["{d}/*.nope"], "no file matches {d}/*.nope"),
    (["{d}/ok.parquet", "--out-dir", "{d}/a_file/out"], "cannot create output directory {d}/a_file/out"),
    (["{d}/ok.parquet", "--out-dir", "{d}/done"], "{d}/done already has meta.json; pass --force"),
    (["{d}/ok.parquet", "--val-fraction", "1.5"], "--val-fraction 1.5 is not between 0 and 1"),
    (["{d}/ok.parquet", "--sample"], "--sample takes no INPUT"),
    ([], "give INPUT files or --sample"),
])
def test_bad_input_is_one_line_and_exit_2(bad_inputs, tmp_path, args, message):
    d = str(bad_inputs)
    out = tmp_path / "out"
    args = [a.format(d=d) for a in args]
    proc = prepare(*args, *([] if "--out-dir" in args else ["--out-dir", out]), check=False)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert message.format(d=d) in proc.stderr
    assert not out.exists() or not any(out.iterdir())  # no outputs, no temporaries


def test_help_explains_every_flag():
    out = prepare("--help").stdout
    for flag in ("INPUT", "--out-dir", "--sample", "--text-column", "--workers", "--val-fraction", "--seed",
                 "--dedup", "--force", "--batch-rows"):
        assert flag in out


def test_read_meta_rejects_broken_directories(sample_dir, tmp_path):
    good = json.loads((sample_dir / "meta.json").read_text())

    def broken(change, bins=True):
        d = tmp_path / f"case{len(list(tmp_path.iterdir()))}"
        d.mkdir()
        if bins:
            for name in ("train.bin", "val.bin"):
                shutil.copy(sample_dir / name, d / name)
        if change is not None:
            (d / "meta.json").write_text(change if isinstance(change, str) else json.dumps(change))
        return d

    cases = [
        (None, "no meta.json in"),
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "holds a JSON list"),
        ({k: v for k, v in good.items() if k != "splits"}, "lacks splits"),
        ({**good, "dtype": "uint32"}, "dtype 'uint32' is not supported"),
        ({**good, "vocab_size": 100_000}, "vocab_size 100000 does not fit uint16"),
        ({**good, "format_version": 2}, "version 2"),
        ({**good, "splits": {**good["splits"], "val": {**good["splits"]["val"], "tokens": 500}}},
         "but meta.json says 500 tokens (1000 bytes)"),
    ]
    for change, message in cases:
        with pytest.raises(UsageError, match=re.escape(message)) as e:
            meta.read_meta(broken(change))
        assert "\n" not in str(e.value)
    with pytest.raises(UsageError, match="train.bin is missing"):
        meta.read_meta(broken(good, bins=False))

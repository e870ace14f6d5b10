"""plateau.tokenizer: GPT-2 ids, EOT handling, and the offline-built encoding against tiktoken's."""

import base64
import hashlib
import json
import os
import random
import subprocess
import sys
import textwrap

import pytest
import tiktoken
from tiktoken_ext.openai_public import r50k_pat_str

from plateau import tokenizer
from plateau.cli import UsageError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def varied_strings():
    """A few thousand deterministic strings: prose, code, whitespace runs, digits, scripts, emoji."""
    from pydoc_data.topics import topics

    rng = random.Random(0)
    prose = [p for name in sorted(topics) for p in topics[name].split("\n\n") if p.strip()]
    out = rng.sample(prose, 1500)
    out += [t[rng.randrange(len(t)):][:rng.randrange(1, 300)] for t in rng.sample(prose, 500)]
    pieces = ["Hello", " world", "don't", "I'll", "we've", "'s", "'RE", "  ", "\t", "\n", "\r\n", " \n ",
              "    ", "\u00a0", "\u3000", "12345", "3.14159", "1,000,000", "0x1F", "١٢٣", "½", "naïve",
              "café", "Ünïcödé", "Москва", "日本語のテキスト", "한국어", "العربية", "עברית", "हिन्दी",
              "ελληνικά", "🙂", "👩‍👩‍👧", "🇫🇷", "e\u0301", "\u200b", "def f(x):\n    return x**2",
              "<|endoftext|>", "<|fim_prefix|>", "$$\\sum_i x_i$$", "http://example.com/a?b=c&d=e",
              "!!!???", "...", "—", "\x00", "\x7f"]
    for _ in range(1500):
        out.append("".join(rng.choice(pieces) for _ in range(rng.randrange(1, 12))))
    out += ["", " ", "\n" * 50, " " * 1000, "9" * 500, "a" * 3000, "🙂" * 200]
    # random code points up to the CJK extensions, less the surrogates UTF-8 cannot hold
    out += ["".join(chr(rng.randrange(32, 0x2FFFF)) for _ in range(40)).encode("utf-8", "ignore").decode()
            for _ in range(300)]
    return out


def rank_file_bytes(enc):
    """Our encoding's ranks in tiktoken's .tiktoken format (tiktoken keeps them in a private field)."""
    ranks = sorted(enc._mergeable_ranks.items(), key=lambda kv: kv[1])
    return b"".join(base64.b64encode(token) + b" " + str(rank).encode() + b"\n" for token, rank in ranks)


@pytest.fixture(scope="module")
def rank_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ranks") / "gpt2.tiktoken"
    path.write_bytes(rank_file_bytes(tokenizer.get_encoding()))
    return path


def test_hello_world_and_constants():
    enc = tokenizer.get_encoding()
    assert enc.encode("Hello world") == [15496, 995]
    assert enc.decode([15496, 995]) == "Hello world"
    assert (enc.n_vocab, enc.eot_token, enc.name) == (tokenizer.VOCAB_SIZE, tokenizer.EOT, tokenizer.NAME)
    assert (tokenizer.VOCAB_SIZE, tokenizer.EOT, tokenizer.NAME) == (50257, 50256, "gpt2")
    assert tokenizer.get_encoding() is enc


def test_eot_is_special_and_never_ordinary():
    enc = tokenizer.get_encoding()
    text = "a<|endoftext|>b"
    assert tokenizer.EOT not in enc.encode_ordinary(text)
    assert enc.decode(enc.encode_ordinary(text)) == text
    assert enc.encode(text, allowed_special="all") == [64, tokenizer.EOT, 65]
    assert enc.decode([tokenizer.EOT]) == "<|endoftext|>"
    with pytest.raises(ValueError):
        enc.encode(text)  # tiktoken refuses special tokens in text unless allowed


def test_encode_to_numpy_without_specials_is_encode_ordinary():
    """prepare.py tokenizes with encode_to_numpy(disallowed_special=()), which skips the Python list."""
    enc = tokenizer.get_encoding()
    for text in varied_strings():
        assert enc.encode_to_numpy(text, disallowed_special=()).tolist() == enc.encode_ordinary(text), text


def test_ranks_serialize_to_the_r50k_base_file(rank_file):
    assert hashlib.sha256(rank_file.read_bytes()).hexdigest() == tokenizer.R50K_SHA256
    assert tokenizer.PAT_STR == r50k_pat_str


def test_offline_encoding_equals_r50k_base_from_tiktoken_cache(rank_file, tmp_path):
    """A fresh process with only our rank file: get_encoding() puts it where tiktoken's r50k_base finds it."""
    strings = tmp_path / "strings.json"
    strings.write_text(json.dumps(varied_strings()))
    script = textwrap.dedent("""
        import json, sys, tiktoken
        from plateau import tokenizer
        ours = tokenizer.get_encoding()
        theirs = tiktoken.get_encoding("r50k_base")  # reads its cache; no network needed
        texts = json.load(open(sys.argv[1]))
        diff = [t for t in texts if ours.encode_ordinary(t) != theirs.encode_ordinary(t)]
        same_tables = ours._mergeable_ranks == theirs._mergeable_ranks and ours._pat_str == theirs._pat_str
        print(json.dumps({"n": len(texts), "diff": diff[:3], "same_tables": same_tables,
                          "special": ours._special_tokens == theirs._special_tokens}))
    """)
    cache = tmp_path / "tiktoken-cache"
    env = {**os.environ, "PLATEAU_GPT2_TIKTOKEN": str(rank_file), "TIKTOKEN_CACHE_DIR": str(cache),
           "PLATEAU_CACHE_DIR": str(tmp_path / "ours")}
    proc = subprocess.run([sys.executable, "-c", script, str(strings)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    cached = cache / hashlib.sha1(tokenizer.R50K_URL.encode()).hexdigest()  # tiktoken's cache key
    assert cached.read_bytes() == rank_file.read_bytes()
    result = json.loads(proc.stdout)
    assert result == {"n": result["n"], "diff": [], "same_tables": True, "special": True}
    assert result["n"] > 3000


def test_offline_encoding_equals_tiktoken_gpt2(rank_file):
    if not all(tokenizer._in_tiktoken_cache(url) for url in tokenizer.GPT2_URLS):
        pytest.skip("tiktoken's gpt2 files (vocab.bpe, encoder.json) are not in its cache, and fetching "
                    "them needs openaipublic; the r50k_base comparison covers the same ranks")
    ours = tokenizer.encoding_from_ranks(rank_file.read_bytes())
    theirs = tiktoken.get_encoding("gpt2")
    assert ours._mergeable_ranks == theirs._mergeable_ranks
    for attr in ("name", "n_vocab", "_pat_str", "_special_tokens"):
        assert getattr(ours, attr) == getattr(theirs, attr), attr
    for text in varied_strings():
        assert ours.encode_ordinary(text) == theirs.encode_ordinary(text), text


def test_explicit_rank_file_with_wrong_hash_is_a_usage_error(tmp_path, monkeypatch):
    bad = tmp_path / "gpt2.tiktoken"
    bad.write_bytes(b"SGVsbG8= 0\n")
    monkeypatch.setenv("PLATEAU_GPT2_TIKTOKEN", str(bad))
    with pytest.raises(UsageError, match="has sha256 .*set PLATEAU_GPT2_TIKTOKEN"):
        tokenizer.get_encoding.__wrapped__()
    monkeypatch.setenv("PLATEAU_GPT2_TIKTOKEN", str(tmp_path / "missing"))
    with pytest.raises(UsageError, match="cannot read it"):
        tokenizer.get_encoding.__wrapped__()

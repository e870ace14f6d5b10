"""The GPT-2 BPE tokenizer (tiktoken), including on a machine with no route to openaipublic.

tiktoken's "gpt2" downloads vocab.bpe and encoder.json on first use. Its ranks equal those of
r50k_base.tiktoken, a file that also ships in the openai-whisper sdist on PyPI, so a machine that
reaches only a package registry can still build the identical encoding. get_encoding() tries:

1. tiktoken's cache already holds gpt2's files: tiktoken.get_encoding("gpt2");
2. a rank file: $PLATEAU_GPT2_TIKTOKEN, our cache ($PLATEAU_CACHE_DIR or ~/.cache/plateau),
   tiktoken's cache entry for r50k_base;
3. openaipublic answers a 3 s probe: tiktoken.get_encoding("gpt2") downloads and caches;
4. pip downloads the openai-whisper sdist; we extract whisper/assets/gpt2.tiktoken.

Every rank file is checked against R50K_SHA256 before use. A file from routes 2 or 4 is also
copied into tiktoken's cache under the r50k_base key, so tiktoken.get_encoding("r50k_base")
works offline afterwards.
"""

import base64
import functools
import glob
import hashlib
import importlib.util
import os
import socket
import subprocess
import sys
import tarfile
import tempfile
import urllib.request

import tiktoken

from plateau.cli import UsageError, atomic_path

NAME = "gpt2"
VOCAB_SIZE = 50257
EOT = 50256
ENDOFTEXT = "<|endoftext|>"

# r50k_pat_str from tiktoken_ext/openai_public.py: GPT-2's split regex, rewritten to run faster.
PAT_STR = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
OPENAI_HOST = "openaipublic.blob.core.windows.net"
GPT2_URLS = (
    f"https://{OPENAI_HOST}/gpt-2/encodings/main/vocab.bpe",
    f"https://{OPENAI_HOST}/gpt-2/encodings/main/encoder.json",
)
R50K_URL = f"https://{OPENAI_HOST}/encodings/r50k_base.tiktoken"
R50K_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
WHISPER_SDIST = "openai-whisper==20250625"
WHISPER_MEMBER = "whisper/assets/gpt2.tiktoken"
# tiktoken fetches with requests and no timeout: a firewalled host would hang it for minutes.
PROBE_TIMEOUT_S = 3.0
PIP_SOCKET_TIMEOUT_S = 20  # per connection attempt, 2 retries; pip's default is 15 s and 5 retries
PIP_TIMEOUT_S = 180  # the whole pip run
HINT = (
    f"set PLATEAU_GPT2_TIKTOKEN to a copy of r50k_base.tiktoken (sha256 {R50K_SHA256}), "
    f"or let this machine reach {OPENAI_HOST} or PyPI"
)


@functools.cache
def get_encoding() -> tiktoken.Encoding:
    """The GPT-2 encoding (vocab 50257, EOT 50256), built once per process."""
    if all(_in_tiktoken_cache(url) for url in GPT2_URLS):
        return tiktoken.get_encoding(NAME)
    data = _local_ranks()
    if data is None and _openai_reachable():
        try:
            return tiktoken.get_encoding(NAME)
        except (OSError, ValueError) as e:  # requests' errors are OSErrors; ValueError: bad hash
            print(f"tokenizer: tiktoken could not download gpt2 ({e}); trying pip", file=sys.stderr)
    if data is None:
        data = _ranks_from_pip()
        _store(os.path.join(_our_cache_dir(), "gpt2.tiktoken"), data)
    if _tiktoken_cache_dir():
        _store(_tiktoken_cache_path(R50K_URL), data)
    return encoding_from_ranks(data)


def encoding_from_ranks(data: bytes) -> tiktoken.Encoding:
    """Build the gpt2 encoding from the bytes of a verified file in tiktoken's .tiktoken format."""
    assert _sha256(data) == R50K_SHA256
    ranks = {}
    for line in data.splitlines():
        token, rank = line.split()
        ranks[base64.b64decode(token)] = int(rank)
    return tiktoken.Encoding(
        NAME, pat_str=PAT_STR, mergeable_ranks=ranks, special_tokens={ENDOFTEXT: EOT},
        explicit_n_vocab=VOCAB_SIZE,
    )


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _tiktoken_cache_dir():
    """tiktoken.load.read_file_cached's choice of directory; "" means caching is off."""
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if var in os.environ:
            return os.environ[var]
    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


def _tiktoken_cache_path(url):
    return os.path.join(_tiktoken_cache_dir(), hashlib.sha1(url.encode()).hexdigest())


def _in_tiktoken_cache(url):
    return bool(_tiktoken_cache_dir()) and os.path.exists(_tiktoken_cache_path(url))


def _our_cache_dir():
    if os.environ.get("PLATEAU_CACHE_DIR"):
        return os.environ["PLATEAU_CACHE_DIR"]
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "plateau")


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def _local_ranks():
    """Bytes of the first verified rank file already on disk, or None."""
    explicit = os.environ.get("PLATEAU_GPT2_TIKTOKEN")
    if explicit:
        data = _read(explicit)
        if data is None:
            raise UsageError(f"PLATEAU_GPT2_TIKTOKEN={explicit}: cannot read it; {HINT}")
        if _sha256(data) != R50K_SHA256:
            raise UsageError(f"PLATEAU_GPT2_TIKTOKEN={explicit} has sha256 {_sha256(data)}; {HINT}")
        return data
    candidates = [os.path.join(_our_cache_dir(), "gpt2.tiktoken")]
    if _tiktoken_cache_dir():
        candidates.append(_tiktoken_cache_path(R50K_URL))
    for path in candidates:
        data = _read(path)
        if data is not None and _sha256(data) == R50K_SHA256:
            return data
    return None


def _openai_reachable():
    if urllib.request.getproxies().get("https"):
        return True  # a direct probe says nothing about a proxy; let requests go through it
    try:
        socket.create_connection((OPENAI_HOST, 443), timeout=PROBE_TIMEOUT_S).close()
        return True
    except OSError:
        return False


def _ranks_from_pip():
    """gpt2.tiktoken from the openai-whisper sdist, verified; UsageError if pip cannot get it."""
    print(f"tokenizer: fetching GPT-2 ranks from the {WHISPER_SDIST} sdist with pip (once)", file=sys.stderr)
    # pip prepares an sdist's metadata even for `download`; without isolation it reuses our
    # setuptools instead of installing one into a throwaway environment (1 s instead of 8 s).
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", *isolation,
               "--timeout", str(PIP_SOCKET_TIMEOUT_S), "--retries", "2", "--quiet", "--dest", tmp,
               WHISPER_SDIST]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
            lines = proc.stderr.strip().splitlines()
            errors = [line for line in lines if line.startswith("ERROR")]
            why = (errors or lines or [f"exit status {proc.returncode}"])[-1]
        except subprocess.TimeoutExpired:
            why = f"timed out after {PIP_TIMEOUT_S} s"
        sdists = glob.glob(os.path.join(tmp, "*.tar.gz"))
        if not sdists:
            raise UsageError(f"no GPT-2 BPE ranks offline and pip failed ({why}); {HINT}")
        with tarfile.open(sdists[0]) as tar:
            members = [m for m in tar.getmembers() if m.name.endswith("/" + WHISPER_MEMBER)]
            data = tar.extractfile(members[0]).read() if members else b""
    if _sha256(data) != R50K_SHA256:
        raise UsageError(f"{WHISPER_MEMBER} in {os.path.basename(sdists[0])} fails its sha256 check; {HINT}")
    return data


def _store(path, data):
    """Cache `data` at `path` unless it is already there; a cache we cannot write is no error."""
    if _read(path) == data:
        return
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            f.write(data)
    except OSError as e:
        print(f"tokenizer: cannot cache {path}: {e.strerror}", file=sys.stderr)

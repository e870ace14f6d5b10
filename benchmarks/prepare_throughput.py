"""prepare.py against raw tiktoken, and prepare's peak memory as its input grows 10x.

    python benchmarks/prepare_throughput.py
    python benchmarks/prepare_throughput.py --copies 20 --repeats 7

Inputs are the --sample parquet repeated with fresh ids (build_sample(copies=...)).
Throughput: prepare.main() end to end (read the parquet, tokenize on all cores, write train.bin,
val.bin, meta.json) against tiktoken's encode_ordinary_batch(texts, num_threads=all cores) on the
same texts already in memory; one warm-up each, then the median of --repeats, runs alternating. Both
rates count the documents' tokens (not prepare's EOTs). Memory: `python prepare.py` in a subprocess
on 4 and on 40 copies: the main process's peak RSS, and the peak PSS of main plus workers.
The last line is prepare_vs_tiktoken=RATIO (tokens/s of prepare over tiktoken's).
"""

import argparse
import contextlib
import io
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import pyarrow.parquet as pq  # noqa: E402

import prepare  # noqa: E402
from plateau import tokenizer  # noqa: E402

POLL_S = 0.01
RSS_COPIES = (4, 40)  # 4 copies already fill prepare's read batches, so the larger run shows growth


def _descendants(pid):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
    out, todo = [], list(children.get(pid, []))
    while todo:
        out.append(todo.pop())
        todo += children.get(out[-1], [])
    return out


def _kib(pid, path, key):
    with contextlib.suppress(OSError), open(f"/proc/{pid}/{path}") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def peak_memory_bytes(args):
    """(main's peak RSS, peak PSS of main plus workers) of `python prepare.py args`, from /proc.

    VmHWM is the kernel's exact high-water mark of one process; the sum over the tree is sampled
    every POLL_S and uses PSS, since forked workers share pages that RSS would count twice.
    """
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "prepare.py"), *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL)
    hwm = tree = 0
    while proc.poll() is None:
        hwm = max(hwm, _kib(proc.pid, "status", "VmHWM"))
        tree = max(tree, sum(_kib(p, "smaps_rollup", "Pss") for p in [proc.pid, *_descendants(proc.pid)]))
        time.sleep(POLL_S)
    assert proc.returncode == 0
    return hwm * 1024, tree * 1024


def _cpu_seconds():
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # pool workers, once joined
    return time.process_time() + children.ru_utime + children.ru_stime


def median_seconds(fns, repeats):
    """Median (wall, CPU) seconds of each function; runs alternate so a busy machine slows both alike."""
    for fn in fns:
        fn()  # warm-up: page cache, worker fork, tiktoken's thread pool
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, t in zip(fns, times, strict=True):
            t0, c0 = time.perf_counter(), _cpu_seconds()
            fn()
            t.append((time.perf_counter() - t0, _cpu_seconds() - c0))
    return [tuple(statistics.median(x) for x in zip(*t, strict=True)) for t in times]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--copies", type=int, default=10, help="sample copies in the throughput input")
    p.add_argument("--repeats", type=int, default=5, help="timed runs of each side (median reported)")
    args = p.parse_args()
    workers = prepare.default_workers()
    enc = tokenizer.get_encoding()
    with tempfile.TemporaryDirectory() as tmp:
        inputs = {}
        for copies in (args.copies, *RSS_COPIES):
            inputs[copies] = os.path.join(tmp, f"x{copies}.parquet")
            if not os.path.exists(inputs[copies]):
                prepare.build_sample(inputs[copies], copies=copies)
        data = inputs[args.copies]
        texts = pq.read_table(data, columns=["text"])["text"].to_pylist()
        tokens = sum(len(t) for t in enc.encode_ordinary_batch(texts, num_threads=workers))
        print(f"input: {len(texts):,} documents, {tokens:,} tokens, {os.path.getsize(data) / 2**20:.1f} MiB "
              f"parquet; {workers} cores, {workers} workers / threads")
        out = os.path.join(tmp, "out")

        def run_prepare():
            with contextlib.redirect_stdout(io.StringIO()):
                prepare.main([data, "--out-dir", out, "--force", "--workers", str(workers)])

        def run_tiktoken():
            enc.encode_ordinary_batch(texts, num_threads=workers)

        (t_tiktoken, cpu_tiktoken), (t_prepare, cpu_prepare) = median_seconds([run_tiktoken, run_prepare],
                                                                               args.repeats)
        rows = (("tiktoken encode_ordinary_batch", t_tiktoken, cpu_tiktoken),
                ("prepare.main end to end", t_prepare, cpu_prepare))
        for name, t, cpu in rows:
            print(f"{name:31} {tokens / t / 1e6:.2f} M tokens/s (median {t:.2f} s of {args.repeats}; "
                  f"{cpu:.2f} CPU s)")
        # On a shared machine wall time depends on the neighbours; CPU seconds much less so.
        print(f"CPU-time ratio (tiktoken / prepare): {cpu_tiktoken / cpu_prepare:.2f}; "
              f"load average during the run {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

        mem = {}
        for copies in RSS_COPIES:
            path = inputs[copies]
            mem[copies] = peak_memory_bytes([path, "--out-dir", os.path.join(tmp, f"m{copies}")])
            print(f"prepare.py on {copies:2} copies ({os.path.getsize(path) / 2**20:5.1f} MiB parquet): "
                  f"main peak RSS {mem[copies][0] / 2**20:.0f} MiB, main + workers peak PSS "
                  f"{mem[copies][1] / 2**20:.0f} MiB")
        small, big = (mem[c] for c in RSS_COPIES)
        print(f"growth for a 10x input: main RSS {big[0] / small[0]:.2f}x, "
              f"main + workers {big[1] / small[1]:.2f}x (target < 1.2); "
              f"{'under' if big[1] < 2**30 else 'OVER'} 1 GiB")
    print(f"prepare_vs_tiktoken={t_tiktoken / t_prepare:.2f}")


if __name__ == "__main__":
    main()

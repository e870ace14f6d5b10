"""How fast plateau.logfmt parses a long log, against a bare two-regex scan of the same lines.

    python benchmarks/parse_speed.py
    python benchmarks/parse_speed.py --lines 100000 --repeats 9

The log is --lines lines in two runs: stock nanoGPT output (an eval line and a checkpoint line every
250 iters), then ours as train.py writes it (config/info header, evals with standard errors, iters with
every field), both made by the same writer functions train.py uses. The baseline only matches nanoGPT's
`step`/`iter` lines with two regexes and keeps the numbers: the floor for any parser of these logs.
One warm-up each, then the median of --repeats. The last line is parse_20k_lines_s=SECONDS (ours, for
20,000 lines: the figure the spec bounds at 1 s).
"""

import argparse
import os
import re
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from plateau import logfmt  # noqa: E402

EVAL_EVERY = 250


def build_log(n_lines):
    """n_lines log lines: half stock nanoGPT, half ours."""
    nano, ours = [], [logfmt.format_config({"n_layer": 12, "n_embd": 384, "max_iters": 10**6}),
                      logfmt.format_info({"num_params": 40562688, "tokens_per_iter": 524288}),
                      logfmt.format_num_params(40562688), logfmt.format_tokens_per_iter(524288)]
    it = 0
    while len(nano) < n_lines // 2:
        loss = 10.0 / (1 + it / 1000)
        if it % EVAL_EVERY == 0:
            nano += [logfmt.format_eval(it, loss, loss + 0.01), "saving checkpoint to out"]
        nano.append(logfmt.format_iter(it, loss, 3902.93, 12.87))
        it += 1
    it = 0
    while len(ours) < n_lines - len(nano):
        loss = 10.0 / (1 + it / 1000)
        if it % EVAL_EVERY == 0:
            ours += [logfmt.format_eval(it, loss, loss + 0.01, 0.0021, 0.0023, 15250.12),
                     logfmt.format_checkpoint("out", 812.4)]
        ours.append(logfmt.format_iter(it, loss, 3902.93, 69.12, 9.9e-4, 0.421, 134330, 65536, 0))
        it += 1
    return (nano + ours)[:n_lines]


_STEP = re.compile(r"step (\d+): train loss ([\d.]+), val loss ([\d.]+)")
_ITER = re.compile(r"iter (\d+): loss ([\d.]+)")


def baseline(lines):
    """The floor: two regexes, nanoGPT's eval and iter lines only."""
    evals, iters = [], []
    for line in lines:
        m = _ITER.search(line)
        if m:
            iters.append((int(m.group(1)), float(m.group(2))))
            continue
        m = _STEP.search(line)
        if m:
            evals.append((int(m.group(1)), float(m.group(2)), float(m.group(3))))
    return evals, iters


def median_s(fn, lines, repeats):
    fn(lines)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(lines)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=20_000, help="log length")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs; the median is reported")
    args = ap.parse_args(argv)
    lines = build_log(args.lines)
    parsed = logfmt.parse(lines)
    assert parsed.skipped == 0 and len(parsed.runs) == 2, (parsed.skipped, len(parsed.runs))
    base_s = median_s(baseline, lines, args.repeats)
    ours_s = median_s(logfmt.parse, lines, args.repeats)
    print(f"{args.lines} lines, formats {parsed.formats}, median of {args.repeats}")
    print(f"baseline (2 regexes): {base_s:.3f} s, {args.lines / base_s:,.0f} lines/s")
    print(f"logfmt.parse:         {ours_s:.3f} s, {args.lines / ours_s:,.0f} lines/s ({ours_s / base_s:.1f}x baseline)")
    print(f"parse_20k_lines_s={ours_s * 20_000 / args.lines:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

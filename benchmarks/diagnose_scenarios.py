"""Induce one training condition per run on CPU and check that diagnose.py names it.

    python benchmarks/diagnose_scenarios.py                        # every scenario, a few minutes on 2 cores
    python benchmarks/diagnose_scenarios.py --only lr_high healthy --work /tmp/scen --scale 0.5

Each scenario trains a tiny GPT with train.py (config/scenarios/tiny_cpu.py plus a few overrides) on
prepare.py's sample data remapped to a 512-token vocabulary, then diagnose.py reads its log.txt.
The table has a row per scenario and a column per kind: the severity raised (C critical, W warning,
i info), `*` where the kind is expected. A scenario is correct when its expected kinds are raised at
warning or critical (`all` of them or `any` one, as listed) and no pathology outside `allowed` is
(throughput never counts against a scenario: CPU timings on shared cores are not what is induced).
Last line: scenarios_correct=K/N.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from plateau import detectors, meta  # noqa: E402  (after the path fix, so the script runs from anywhere)

BASE = os.path.join(ROOT, "config", "scenarios", "tiny_cpu.py")
VOCAB = 512  # EOT -> 0, the 510 most frequent train tokens -> 1..510, all others -> 511
TINY_TRAIN_TOKENS = 8192  # the repeated-data scenario: 8k train tokens, ~75 epochs in 600 iterations
# Not under test: eval and checkpoint overhead and timing stalls of a tiny model on shared CPU cores are real
# (throughput findings say so) but are not the condition a scenario induces.
PATHOLOGY = set(detectors.KINDS) - set(detectors.NOT_PATHOLOGY) - {"throughput"}
SHORT = {"overfitting": "overfit", "data_repetition": "repeat", "capacity": "capac", "lr_too_high": "lr_hi",
         "lr_too_low": "lr_lo", "lr_schedule": "sched", "divergence": "diverg", "loss_spikes": "spikes",
         "no_learning": "nolearn", "eval_variance": "evalvar", "throughput": "thruput",
         "config_mismatch": "cfgmis", "still_improving": "improv", "healthy": "healthy"}

# name: overrides of tiny_cpu.py, data ("small": the remapped sample, "tiny": its first 8k train tokens),
# the kinds expected, whether all or any of them must be raised, other pathologies tolerated, and why.
SCENARIOS = {
    "healthy": dict(overrides=[], data="small", expect=(), need="all", allowed=(),
                    why="the baseline: 1.1 epochs, ~5 tokens/param, cosine to min_lr"),
    "lr_high": dict(overrides=["--learning_rate=3.0", "--min_lr=0.3", "--nan_patience=1000"], data="small",
                    expect=("divergence", "lr_too_high", "loss_spikes"), need="any",
                    allowed=("divergence", "lr_too_high", "loss_spikes", "no_learning", "lr_schedule"),
                    why="AdamW at 1000x a sane LR"),
    "lr_low": dict(overrides=["--learning_rate=3e-6", "--min_lr=3e-7"], data="small",
                   expect=("lr_too_low", "no_learning"), need="any",
                   allowed=("lr_too_low", "no_learning", "lr_schedule"), why="1/1000 of a sane LR"),
    "repeated_data": dict(overrides=[], data="tiny", expect=("overfitting", "data_repetition"), need="all",
                          allowed=("capacity", "eval_variance", "lr_schedule"),
                          why=f"{TINY_TRAIN_TOKENS:,} train tokens seen ~75 times"),
    # learning_rate 1e-2 is near the best for this size: val 3.226, 3.148, 3.130 at 3e-3, 1e-2, 3e-2 (1500 iters)
    "capacity": dict(overrides=["--n_layer=1", "--n_head=1", "--n_embd=8", "--batch_size=32", "--max_iters=1500",
                                "--lr_decay_iters=1500", "--learning_rate=1e-2", "--min_lr=1e-3",
                                "--eval_interval=150"], data="small", expect=("capacity",), need="all",
                     allowed=("data_repetition",), why="4.9k parameters, ~630 tokens/param (5.8 epochs)"),
    "eval_iters_1": dict(overrides=["--eval_iters=1"], data="small", expect=("eval_variance",), need="all",
                         allowed=(), why="each eval is one 1,024-token batch"),
}


def small_vocab(src, dst, vocab=VOCAB, train_tokens=None):
    """Copy data dir `src` to `dst` with token ids remapped to `vocab`; train.bin cut to `train_tokens`."""
    m = meta.read_meta(src)
    train = np.asarray(meta.open_split(src, "train", m))
    counts = np.bincount(train, minlength=m["vocab_size"])
    counts[m["eot_token"]] = -1  # EOT gets id 0 of its own
    lut = np.full(max(m["vocab_size"], 1 << 16), vocab - 1, dtype=np.uint16)
    lut[np.argsort(-counts, kind="stable")[: vocab - 2]] = np.arange(1, vocab - 1)
    lut[m["eot_token"]] = 0
    os.makedirs(dst, exist_ok=True)
    new = dict(m, vocab_size=vocab, eot_token=0, tokenizer=f"{m['tokenizer']}-top{vocab - 2}",
               args=dict(m["args"], remap=f"benchmarks/diagnose_scenarios.py small_vocab({vocab}, {train_tokens})"))
    new["splits"] = {}
    for split, arr in (("train", train[:train_tokens]), ("val", np.asarray(meta.open_split(src, "val", m)))):
        ids = lut[arr]
        ids.tofile(os.path.join(dst, f"{split}.bin"))
        new["splits"][split] = {"file": f"{split}.bin", "documents": max(1, int((ids == 0).sum())),
                                "tokens": int(ids.size)}
    meta.write_meta(dst, new)
    return dst


def prepare_data(work):
    """work/sample (prepare.py --sample), work/small and work/tiny (remapped); reused when present."""
    sample = os.path.join(work, "sample")
    if not os.path.exists(os.path.join(sample, "meta.json")):
        subprocess.run([sys.executable, "prepare.py", "--sample", "--out-dir", sample], cwd=ROOT, check=True,
                       capture_output=True)
    dirs = {"small": os.path.join(work, "small"), "tiny": os.path.join(work, "tiny")}
    for name, tokens in (("small", None), ("tiny", TINY_TRAIN_TOKENS)):
        if not os.path.exists(os.path.join(dirs[name], "meta.json")):
            small_vocab(sample, dirs[name], train_tokens=tokens)
    return dirs


def scaled(overrides, scale):
    """Shorten a scenario for tests: max_iters, lr_decay_iters and eval_interval times `scale`."""
    keys = {"max_iters": 600, "lr_decay_iters": 600, "eval_interval": 100}
    given = {o[2:].split("=")[0]: o for o in overrides}
    out = [o for o in overrides if o[2:].split("=")[0] not in keys]
    for key, default in keys.items():
        v = int(given[key].split("=")[1]) if key in given else default
        out.append(f"--{key}={max(1, round(v * scale))}")
    return out


def run_scenario(name, dirs, work, scale=1.0):
    """Train, then diagnose; returns (diagnose's JSON, seconds spent training)."""
    s = SCENARIOS[name]
    out_dir = os.path.join(work, f"out-{name}")
    log = os.path.join(out_dir, "log.txt")
    if os.path.exists(log):
        os.remove(log)  # train.py appends; a rerun starts over
    cmd = [sys.executable, "train.py", BASE, f"--data_dir={dirs[s['data']]}", f"--out_dir={out_dir}", "--force=True",
           *scaled(s["overrides"], scale)]
    t0 = time.perf_counter()
    # one thread: a step of a model this small gains little from two, and loses 10x when cores are shared
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t0
    if not os.path.exists(log):
        raise RuntimeError(f"{name}: train.py wrote no log (exit {r.returncode}): {r.stderr[-2000:]}")
    d = subprocess.run([sys.executable, "diagnose.py", log, "--json", "--meta", dirs[s["data"]]], cwd=ROOT,
                       capture_output=True, text=True)
    if d.returncode != 0:
        raise RuntimeError(f"{name}: diagnose.py exit {d.returncode}: {d.stderr}")
    return json.loads(d.stdout), dt


def raised(out):
    """kind -> most severe severity letter raised."""
    rank = {"critical": 0, "warning": 1, "info": 2}
    best = {}
    for f in sorted(out["findings"], key=lambda f: rank[f["severity"]]):
        best.setdefault(f["kind"], f["severity"])
    return best


def check(name, out):
    """(expected kinds raised, unexpected pathologies raised) at warning or critical."""
    s = SCENARIOS[name]
    warn = {k for k, sev in raised(out).items() if sev != "info"}
    hit = [k in warn for k in s["expect"]]
    extra = (warn & PATHOLOGY) - set(s["expect"]) - set(s["allowed"])
    return (all(hit) if s["need"] == "all" else any(hit)), sorted(extra)


def correct(name, out):
    found, extra = check(name, out)
    return found and not extra


def table(results):
    kinds = detectors.KINDS
    head = f"{'scenario':<14}" + "".join(f"{SHORT[k]:>8}" for k in kinds) + "   ok"
    rows = [head, "-" * len(head)]
    letter = {"critical": "C", "warning": "W", "info": "i"}
    for name, out in results.items():
        got = raised(out)
        cells = "".join(f"{letter.get(got.get(k), '.') + ('*' if k in SCENARIOS[name]['expect'] else ' '):>8}"
                        for k in kinds)
        found, extra = check(name, out)
        rows.append(f"{name:<14}{cells}   {'yes' if found and not extra else 'NO'}"
                    + ("" if found else " (missed)") + "".join(f" +{k}" for k in extra))
    return "\n".join(rows)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", nargs="+", choices=list(SCENARIOS), help="run these scenarios only")
    p.add_argument("--work", default=os.path.join(ROOT, "out-scenarios"), help="data and run directory")
    p.add_argument("--scale", type=float, default=1.0, help="multiply iterations (and eval spacing) by this")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    dirs = prepare_data(args.work)
    results = {}
    for name in args.only or SCENARIOS:
        out, dt = run_scenario(name, dirs, args.work, args.scale)
        results[name] = out
        top = [f"{f['kind']}({f['severity'][0]})" for f in out["findings"][:4]]
        print(f"{name:<14} trained {dt:5.1f}s  {SCENARIOS[name]['why']}; top: {', '.join(top)}", flush=True)
    print()
    print(table(results))
    print(f"\nexpected: `*`; cells: C critical, W warning, i info, . not raised; +kind: an unexpected pathology; "
          f"{time.perf_counter() - t0:.0f}s")
    print(f"expected_kinds_raised={sum(check(n, o)[0] for n, o in results.items())}/{len(results)}")
    print(f"scenarios_correct={sum(correct(n, o) for n, o in results.items())}/{len(results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

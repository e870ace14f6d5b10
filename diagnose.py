"""Say why the loss stopped going down, with numbers, from a nanoGPT-style training log.

    python diagnose.py out/log.txt                            # summary, ranked findings, key facts
    python diagnose.py run.log --config config/fineweb_4070.py --meta data/fineweb --gpu "RTX 4070"
    python diagnose.py run.log --json                         # one JSON object: facts, findings, parse
    python diagnose.py run.log --plot run.png                 # loss vs tokens seen, LR, asymptote, flagged regions
    python diagnose.py out/log.txt --follow --interval 10     # print new findings while training runs
    python diagnose.py a.log b.log                            # compare runs at equal tokens seen
    python diagnose.py run.log --write-config config/next.py  # the next run's config with the fixes applied

Pure stages: parse (plateau.logfmt) -> facts and findings (plateau.detectors) -> report (here).
Exit 0 on a diagnosis, 2 with one line on stderr when the input is unusable.
"""

import argparse
import json
import math
import os
import shlex
import sys
import textwrap
import time

import numpy as np

import plateau.cli
from plateau import config as pconfig
from plateau import detectors, gpus, logfmt
from plateau.cli import UsageError, atomic_path, write_text_atomic
from plateau.meta import read_meta

WIDTH = 100  # report columns
RANK = {"critical": 0, "warning": 1, "info": 2}
# The facts the text report shows, in this order (--json has them all).
KEY_FACTS = ("num_params", "tokens_per_iter", "tokens_seen", "dataset_tokens", "epochs", "tokens_per_param",
             "lr_schedule", "best_val_loss", "best_val_step", "last_val_loss", "val_train_gap", "eval_se",
             "val_trend", "loss_asymptote", "remaining_gain", "time_per_iter_ms", "mfu_logged", "mfu_real")


class ArgParser(argparse.ArgumentParser):
    def error(self, message):  # one line and exit 2 through plateau.cli.run, not argparse's usage dump
        raise UsageError(message)


def get_args(argv):
    doc = __doc__.split("\n")
    p = ArgParser(prog="diagnose.py", description=doc[0], epilog="examples:\n" + "\n".join(doc[2:9]),
                  formatter_class=argparse.RawDescriptionHelpFormatter)
    add = p.add_argument
    add("logs", nargs="+", metavar="LOG", help="training log: stock nanoGPT, our log.txt, build-nanogpt/llm.c, "
        "llama2.c or litgpt lines, pasted junk skipped; several logs are compared at equal tokens seen")
    add("--config", metavar="PY", help="the run's config file (nanoGPT-style assignments): model size, batch and "
        "LR schedule where the log does not print them")
    add("--meta", metavar="PATH", help="prepare.py's meta.json or its directory: dataset tokens, for epochs "
        "and data repetition")
    add("--gpu", metavar="NAME", help="the GPU the run used, e.g. 'RTX 4070': logged MFU is converted to that "
        "card's real peak (stock nanoGPT divides by an A100's 312 TFLOPS)")
    add("--run", type=int, default=-1, metavar="N", help="which run of a file that holds several (the step "
        "counter started over): 0 the first, -1 the last (default)")
    add("--json", action="store_true", help="print one JSON object {facts, findings, parse, ...} instead of the "
        "report; several logs add runs and comparison; with --follow, one JSON line per new finding")
    add("--plot", metavar="PNG", help="write a plot: losses against tokens seen, LR, the fitted asymptote, "
        "flagged regions (.png, .svg or .pdf)")
    add("--follow", action="store_true", help="keep reading a growing log; print each new finding (kind and "
        "severity not seen before) as one line; Ctrl-C stops")
    add("--interval", type=float, default=5.0, metavar="S", help="--follow: seconds between polls (default 5)")
    add("--follow-timeout", type=float, default=0.0, metavar="S", help="--follow: stop after S seconds without "
        "new lines (default 0: never)")
    add("--write-config", metavar="PATH", help="write a ready-to-run config for the next run: this run's config "
        "with the findings' changes applied, each commented with its finding and expected effect")
    add("--force", action="store_true", help="overwrite existing --plot and --write-config files")
    return p.parse_args(argv)


# ---------------------------------------------------------------- inputs


def check_target(flag, path, force):
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path} is a directory")
    if os.path.exists(path) and not force:
        raise UsageError(f"{flag} {path} exists; pass --force to overwrite")
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d) or not os.access(d, os.W_OK | os.X_OK):
        raise UsageError(f"{flag}: directory {d} does not exist or is not writable")


def plot_format(path):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    ext = os.path.splitext(path)[1][1:].lower() or "png"
    if ext not in Figure().canvas.get_supported_filetypes():
        raise UsageError(f"--plot {path}: unknown image format '.{ext}' (use .png, .svg or .pdf)")
    return ext


def load_config(path):
    """The --config file's assignments, our keys type-checked; nanoGPT's `dataset` also gives data_dir."""
    if path is None:
        return None
    if not os.path.isfile(path):
        raise UsageError(f"--config {path}: no such file")
    values = with_data_dir(pconfig.read_file(path))
    for key in list(values):
        # ours are type-checked; a near miss (a typo, another trainer's name) is an error, not ignored
        if key in pconfig.FIELDS or (key != "dataset" and pconfig.suggest(key)):
            values[key] = pconfig.coerce(key, values[key], f" in {path}")
    return values


def with_data_dir(values):
    """nanoGPT's `dataset = name` reads data/name: give it as data_dir unless one is set."""
    if "dataset" in values and "data_dir" not in values:
        values = {**values, "data_dir": os.path.join("data", str(values["dataset"]))}
    return values


def load_meta(path):
    if path is None:
        return None
    if not os.path.exists(path):
        raise UsageError(f"--meta {path}: no such file or directory")
    if os.path.isfile(path) and os.path.basename(path) != "meta.json":
        raise UsageError(f"--meta {path}: pass prepare.py's meta.json or the directory holding it")
    return read_meta(path if os.path.isdir(path) else os.path.dirname(path) or ".", check_bins=False)


def load_gpu(name):
    if name is None:
        return None
    g = gpus.lookup(name)
    if g is None:
        raise UsageError(f"unknown GPU '{name}' (known: {', '.join(gpus.names()[::3])}, ...; see plateau/gpus.py)")
    return g.name


def analyse(path, index, config, meta, gpu, required=True):
    """parse -> facts -> findings for one log; None (if not `required`) while it has no training lines."""
    try:
        parsed = logfmt.parse_file(path)
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    n = len(parsed.runs)
    if not -n <= index < n:
        raise UsageError(f"--run {index}: {path} holds {n} run(s); use 0..{n - 1}, or -1 for the last")
    run = parsed.runs[index]
    if run.empty():
        if not required:
            return None
        raise UsageError(f"no training lines in {path} (no 'step N: train loss ...' or 'iter N: loss ...' lines)")
    facts, findings = detectors.diagnose(run, config, meta, gpu)
    last = max([i.iter for i in run.iters] + [e.step for e in run.evals])
    return {"path": path, "parsed": parsed, "index": index % n, "run": run, "last": last, "facts": facts,
            "findings": findings}


# ---------------------------------------------------------------- numbers


def value(facts, name):
    v = (facts.get(name) or {}).get("value")
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def si(v):
    """40.56M, 10.49B, 524,288, 3.523: short and exact enough for a terminal."""
    if v is None:
        return "unknown"
    if isinstance(v, (str, bool)) or not math.isfinite(v):
        return str(v)
    for mult, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M")):
        if abs(v) >= mult:
            return f"{v / mult:.4g}{suffix}"
    if float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:,.1f}" if abs(v) >= 1000 else f"{v:.4g}"


def short(path):
    """The last two parts of a path: out-fineweb/log.txt says more than log.txt."""
    return os.path.join(*os.path.normpath(os.path.abspath(path)).split(os.sep)[-2:])


def jsonable(x):
    """Plain JSON types; nan/inf become the strings 'nan'/'inf' (strict JSON has no such numbers)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if hasattr(x, "tolist"):  # numpy scalars and arrays
        return jsonable(x.tolist())
    return str(x) if isinstance(x, float) and not math.isfinite(x) else x


def loss_series(res, scale):
    """(x, y, metric): val loss at each eval (else iter loss), x = iterations x scale, finite points only."""
    pts = [(e.step, e.val_loss) for e in res["run"].evals if e.val_loss is not None and math.isfinite(e.val_loss)]
    metric = "val loss" if pts else "iter loss"
    pts = pts or [(i.iter, i.loss) for i in res["run"].iters if i.loss is not None and math.isfinite(i.loss)]
    pts.sort()
    return [p[0] * scale for p in pts], [p[1] for p in pts], metric


def compare(results):
    """Which run is better at the largest tokens-seen value all runs reached (loss interpolated)."""
    tpis = [value(r["facts"], "tokens_per_iter") for r in results]
    axis = "tokens" if all(tpis) else "iters"
    series = [loss_series(r, tpi if axis == "tokens" else 1) for r, tpi in zip(results, tpis, strict=True)]
    at = min((s[0][-1] for s in series if s[0]), default=None)
    at_loss = [float(np.interp(at, s[0], s[1])) if s[0] and s[0][0] <= at <= s[0][-1] else None for s in series]
    known = [(v, i) for i, v in enumerate(at_loss) if v is not None]
    best = min(known)[1] if known else None
    rows = []
    for r, s, loss in zip(results, series, at_loss, strict=True):
        d = None if loss is None or best is None else loss - at_loss[best]
        rows.append({"log": r["path"], "metric": s[2], "final_val_loss": s[1][-1] if s[1] else None,
                     "best_val_loss": min(s[1], default=None), "tokens_seen": value(r["facts"], "tokens_seen"),
                     "num_params": value(r["facts"], "num_params"), "loss_at": loss, "delta_nats": d,
                     "delta_pct": None if d is None else 100 * d / loss})
    return {"axis": axis, "at": at, "best": best, "rows": rows}


# ---------------------------------------------------------------- reports


def wrap(text, first, indent):
    return textwrap.fill(str(text), WIDTH, initial_indent=first, subsequent_indent=indent)


def summary(findings):
    """Plain words: what to fix (warning and critical findings), then context (info), three items at most."""
    main = [f for f in findings if f.severity != "info"][:3]
    out = [wrap(f"{f.title}. Do: {f.fix}", f"  {i}. ", "     ") for i, f in enumerate(main, 1)]
    context = [f.title for f in findings if f.severity == "info"][:max(1, 3 - len(main))]
    if not main:
        out.append(wrap("Nothing at warning level: no cause to fix in this log.", "  ", "  "))
    if context:
        out.append(wrap("Context: " + "; ".join(context) + ".", "  ", "  "))
    return out


def finding_lines(f):
    out = [wrap(f"{f.kind}: {f.title}", f"[{f.severity} {f.confidence:.0%}] ", "      ")]
    out += [wrap(e, "    - ", "      ") for e in f.evidence]
    out.append(wrap(f.fix, "    fix:    ", " " * 12))
    if f.expect:
        out.append(wrap(f.expect, "    expect: ", " " * 12))
    if f.changes:
        out.append(wrap(", ".join(f"{k}={v!r}" for k, v in f.changes.items()), "    change: ", " " * 12))
    return out


def fact_lines(facts):
    out = []
    for name in KEY_FACTS:
        f = facts.get(name)
        if f is None:
            continue
        note = (f.get("note") or "").removeprefix("unknown: ")
        if f.get("value") is None:
            text = f"unknown: {note}"
        else:
            unit = f.get("unit") or ""
            text = f"{si(f['value'])}{'' if unit in ('', '%') else ' '}{unit} ({f.get('source')})"
            text += f": {note}" if note else ""
        out.append(wrap(text, f"  {name:<18} ", " " * 21))
    return out


def parse_summary(res):
    p = res["parsed"]
    return (f"parse: {p.lines} lines, {p.used} used, {p.skipped} skipped; formats: {', '.join(p.formats) or 'none'}"
            f"; run {res['index'] + 1} of {len(p.runs)}")


def text_report(res):
    r = res["run"]
    out = [f"{res['path']}: {len(r.iters)} iter lines, {len(r.evals)} evals, up to iter {res['last']:,}", "",
           "Summary"] + summary(res["findings"]) + ["", "Findings (most important first)"]
    for f in res["findings"]:
        out += finding_lines(f)
    out += ["", "Key facts (all of them: --json)"] + fact_lines(res["facts"]) + ["", parse_summary(res)]
    return "\n".join(out)


def compare_report(results, cmp):
    unit, at = cmp["axis"], si(cmp["at"])
    num = lambda v: "-" if v is None else f"{v:.4f}"
    names = [short(r["log"]) + ("" if r["metric"] == "val loss" else " (iter loss)") for r in cmp["rows"]]
    w = min(48, max(map(len, names)))
    out = [wrap(f"Comparison at equal {unit}: {at} {unit}, the most that all runs reached"
                + ("" if unit == "tokens" else " (tokens per iteration unknown for a run: pass --config)"), "", ""), "",
           f"  {'log':<{w}} {'final val':>9} {'best val':>9} {'tokens seen':>11} {'params':>8} {'loss @ ' + at:>14}"]
    for i, (name, row) in enumerate(zip(names, cmp["rows"], strict=True)):
        out.append(f"  {name[-w:]:<{w}} {num(row['final_val_loss']):>9} {num(row['best_val_loss']):>9} "
                   f"{si(row['tokens_seen']):>11} {si(row['num_params']):>8} {num(row['loss_at']):>14}"
                   + ("  <- best" if i == cmp["best"] else ""))
    out += [wrap(f"{names[cmp['best']]} is better than {name} by {row['delta_nats']:.4f} nats "
                 f"({row['delta_pct']:.1f}%) at {at} {unit}.", "  ", "    ")
            for name, row in zip(names, cmp["rows"], strict=True) if row["delta_nats"]]
    for res in results:
        out += ["", f"{res['path']}:"] + summary(res["findings"])
    return "\n".join(out)


def to_json(res):
    p = res["parsed"]
    return {"facts": res["facts"], "findings": [f.to_json() for f in res["findings"]],
            "parse": {"lines": p.lines, "used": p.used, "skipped": p.skipped, "formats": p.formats},
            "log": res["path"], "run": res["index"], "runs_in_file": len(p.runs)}


def dumps(obj):
    return json.dumps(jsonable(obj), allow_nan=False)


def emit(text):
    try:
        print(text, flush=True)
    except BrokenPipeError:  # `diagnose.py LOG | head`: the reader has gone; the rest goes nowhere, as with cat
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


# ---------------------------------------------------------------- plot


def plot(res, path, fmt):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    r, facts = res["run"], res["facts"]
    tpi = value(facts, "tokens_per_iter")
    k = tpi or 1
    fin = lambda v: v is not None and math.isfinite(v)
    fig, ax = plt.subplots(figsize=(11, 6), dpi=110)
    it = [i for i in r.iters if fin(i.loss)]
    ax.plot([i.iter * k for i in it], [i.loss for i in it], color="0.6", lw=0.8, label="iter loss (train mode, "
            "one batch)")
    pts = [(i.iter, i.loss) for i in it]
    for attr, color, label in (("train_loss", "tab:blue", "train loss (eval)"), ("val_loss", "tab:orange",
                                                                                 "val loss (eval)")):
        ev = [e for e in r.evals if fin(getattr(e, attr))]
        ax.plot([e.step * k for e in ev], [getattr(e, attr) for e in ev], "o-", ms=3, color=color, label=label)
        pts += [(e.step, getattr(e, attr)) for e in ev]
    x_end = res["last"] * k
    fit = (facts.get("loss_asymptote") or {}).get("fit")
    if fit and x_end > 0:
        grid = [x_end * 10 ** (-2.3 * (1 - j / 99)) for j in range(100)]
        ax.plot(grid, [fit["E"] + fit["A"] * x ** -fit["alpha"] for x in grid], "--", color="tab:red", lw=1,
                label=f"fit E + A·{fit.get('x', 'x')}^-α, α = {fit['alpha']:.2f}")
        ax.axhline(fit["E"], ls=":", color="tab:red", lw=1, label=f"fitted asymptote E = {fit['E']:.3f}")
        pts.append((res["last"], fit["E"]))
    if pts:  # the initial drop from ~ln(vocab) would squash the rest: the top is the highest point after it
        x0 = min(x for x, _ in pts) + 0.1 * (res["last"] - min(x for x, _ in pts))
        lo, hi = min(y for _, y in pts), max(y for x, y in pts if x >= x0)
        pad = (hi - lo) or 1.0
        ax.set_ylim(lo - 0.05 * pad, hi + 0.15 * pad)
    bad = [i.iter * k for i in r.iters if not fin(i.loss)] + [e.step * k for e in r.evals if not fin(e.val_loss)]
    if bad:
        ax.plot(bad, [ax.get_ylim()[1]] * len(bad), "x", color="red", ms=7, clip_on=False, label="nan/inf loss")
    colors = {"critical": "tab:red", "warning": "tab:orange"}
    for f in res["findings"]:
        if f.region and f.severity in colors:
            a, b = f.region[0] * k, max(f.region[1] * k, f.region[0] * k + 0.004 * x_end)
            ax.axvspan(a, b, color=colors[f.severity], alpha=0.12)
            ax.text(a, 0.99, f" {f.kind} ({f.severity})", transform=ax.get_xaxis_transform(), va="top",
                    fontsize=8, color=colors[f.severity], rotation=0 if b - a > 0.15 * x_end else 90)
    handles, labels = ax.get_legend_handles_labels()
    lr = [i for i in r.iters if fin(i.lr)]
    if lr:
        ax2 = ax.twinx()
        handles += ax2.plot([i.iter * k for i in lr], [i.lr for i in lr], color="tab:green", lw=1, alpha=0.7)
        labels.append("learning rate (right axis)")
        ax2.set_ylabel("learning rate", color="tab:green")
        ax2.set_ylim(0, max(i.lr for i in lr) * 1.1)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1e3:g}K" if tpi and 1e3 <= abs(v) < 1e6 else si(v)))
    ax.set_xlabel("tokens seen" if tpi else "iterations (tokens per iteration unknown: pass --config)")
    ax.set_ylabel("loss (nats per token)")
    ax.grid(alpha=0.3)
    ax.legend(handles, labels, loc="upper right", fontsize=8, framealpha=0.9)
    best, step = value(facts, "best_val_loss"), value(facts, "best_val_step")
    ax.set_title(f"{short(res['path'])}: {si(value(facts, 'num_params'))} params, "
                 f"{si(value(facts, 'tokens_seen'))} tokens seen, best val "
                 + (f"{best:.4f} at step {si(step)}" if best is not None else "unknown"), fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt)
    plt.close(fig)


# ---------------------------------------------------------------- next config


def base_config(run, config_values):
    """(values, source per key): header config > --config > the log's config echo > Config defaults."""
    fields = pconfig.FIELDS
    header = len(set(run.config) & set(fields)) >= 0.8 * len(fields)  # our train.py's full `config` line
    logged = with_data_dir(run.config)
    values = {k: f.default for k, f in fields.items()}
    source = dict.fromkeys(fields, "default")
    for name, layer in (("the log's config echo", {} if header else logged), ("--config", config_values or {}),
                        ("the log's config line", logged if header else {})):
        for key, v in layer.items():
            try:
                values[key], source[key] = pconfig.coerce(key, v), name
            except UsageError:
                pass  # not our key, or an echo like `batch_size = 12 * 8` kept as text: keep the default
    return values, source


def next_config(res, config_values, target, command):
    """Text of a config file for the next run: the base config with the findings' changes applied."""
    fields = pconfig.FIELDS
    values, source = base_config(res["run"], config_values)
    base, applied, skipped = dict(values), {}, []
    for f in sorted(res["findings"], key=lambda f: RANK[f.severity] > 1):  # warning+ first, rank kept within
        for key, v in (f.changes or {}).items():
            if key in applied:
                continue  # a higher-ranked finding already set it
            if fields.get(key) and fields[key].type is int and isinstance(v, float) and v.is_integer():
                v = int(v)
            try:
                v = pconfig.coerce(key, v)
            except UsageError as e:
                skipped.append(f"{key} = {v!r} ({f.kind}): {e}")
                continue
            if v != values[key]:
                values[key], applied[key] = v, f
    # nanoGPT conventions that the changed keys drag along: the decay ends at max_iters, min_lr ~ lr/10
    if "max_iters" in applied and "lr_decay_iters" not in applied and base["lr_decay_iters"] == base["max_iters"]:
        values["lr_decay_iters"], applied["lr_decay_iters"] = values["max_iters"], applied["max_iters"]
    if "learning_rate" in applied and ("min_lr" not in applied or values["min_lr"] > values["learning_rate"]):
        ratio = min(1.0, base["min_lr"] / base["learning_rate"]) if base["learning_rate"] > 0 else 0.1
        values["min_lr"], applied["min_lr"] = float(f"{values['learning_rate'] * ratio:.3g}"), applied["learning_rate"]
    try:
        pconfig.validate(pconfig.Config(**values))
    except UsageError as e:
        raise UsageError(f"the recommended config is invalid ({e}); pass --config with the run's config") from None
    unknown = [k for k in fields if source[k] == "default"]
    known = sorted({s for s in source.values() if s != "default"}) or ["nothing (plateau's defaults)"]
    out = [f"# Next run after {res['path']} (run {res['index'] + 1}), written by:", f"#   {command}",
           f"# Train it: python train.py {target}", "# Base values: " + ", ".join(known)
           + (f"; {len(unknown)} keys unknown for this run keep plateau's defaults ('# default')" if unknown else "")]
    out += [f"# not applied: {s}" for s in skipped]
    blocks = []
    for f in applied.values():  # one block per finding, in rank order
        if not any(f is b for b in blocks):
            blocks.append(f)
    for f in blocks:
        out.append("")
        for text in (f"{f.kind} [{f.severity}]: {f.title}", f"expect: {f.expect}" if f.expect else ""):
            out += textwrap.wrap(text, 98, initial_indent="# ", subsequent_indent="#   ")
        out += [f"{k} = {values[k]!r}  # {f.kind}; was {base[k]!r}" for k in fields if applied.get(k) is f]
    out += ["", "# unchanged"] + [f"{k} = {values[k]!r}" + "  # default" * (source[k] == "default")
                                  for k in fields if k not in applied]
    return "\n".join(out) + "\n", applied, unknown


# ---------------------------------------------------------------- main


def follow(args, config, meta, gpu, fmt):
    """Re-diagnose whenever the log grows; print each (kind, severity) the first time it appears."""
    path, seen, size, quiet_since = args.logs[0], set(), -1, time.monotonic()
    try:
        while True:
            now = os.path.getsize(path) if os.path.exists(path) else 0
            if now != size:
                size, quiet_since = now, time.monotonic()
                res = analyse(path, args.run, config, meta, gpu, required=False)
                for f in res["findings"] if res else []:
                    if (f.kind, f.severity) not in seen:
                        seen.add((f.kind, f.severity))
                        emit(dumps({"iter": res["last"], **f.to_json()}) if args.json else
                             f"iter {res['last']}: [{f.severity} {f.confidence:.0%}] {f.kind}: {f.title}")
                if res and args.plot:
                    plot(res, args.plot, fmt)
            elif args.follow_timeout and time.monotonic() - quiet_since >= args.follow_timeout:
                return 0
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(map(str, argv))
    args = get_args(argv)
    for path in args.logs:
        if os.path.isdir(path):
            raise UsageError(f"{path} is a directory; pass the log file in it (e.g. {path}/log.txt)")
        if not os.path.exists(path):
            raise UsageError(f"no such log file: {path}")
    if len(args.logs) > 1 and (args.follow or args.write_config):
        raise UsageError("--follow and --write-config take one log")
    if args.interval <= 0 or args.follow_timeout < 0:
        raise UsageError("--interval must be > 0 and --follow-timeout >= 0")
    for flag, target in (("--plot", args.plot), ("--write-config", args.write_config)):
        if target:
            check_target(flag, target, args.force)
    fmt = plot_format(args.plot) if args.plot else None
    config, meta, gpu = load_config(args.config), load_meta(args.meta), load_gpu(args.gpu)
    if args.follow:
        return follow(args, config, meta, gpu, fmt)
    results = [analyse(p, args.run, config, meta, gpu) for p in args.logs]
    res = results[-1]  # the last log is the primary one: its facts and findings head the JSON
    if len(results) == 1:
        emit(dumps(to_json(res)) if args.json else text_report(res))
    else:
        cmp = compare(results)
        emit(dumps({**to_json(res), "runs": [to_json(r) for r in results], "comparison": cmp}) if args.json
             else compare_report(results, cmp))
    if args.plot:
        plot(res, args.plot, fmt)
        print(f"diagnose.py: wrote {args.plot}", file=sys.stderr)
    if args.write_config:
        command = shlex.join(["python", "diagnose.py", *argv])
        text, applied, unknown = next_config(res, config, args.write_config, command)
        write_text_atomic(args.write_config, text)
        print(f"diagnose.py: wrote {args.write_config} ({len(applied)} changed keys)", file=sys.stderr)
        if not config and len(unknown) > len(pconfig.FIELDS) // 2:
            print(f"diagnose.py: note: {len(unknown)} keys are unknown for this run and keep plateau's defaults; "
                  "pass --config to start from the run's own config", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(plateau.cli.run(main))

"""Facts about one training run, from its log plus --config, --meta and --gpu when given.

    from plateau import facts, logfmt
    run = logfmt.parse_file("out/log.txt").runs[-1]
    f = facts.compute(run, config={"n_layer": 12, "n_embd": 384}, meta=None, gpu="RTX 4070")
    f["tokens_per_param"]  # {"value": 129.3, "unit": "tokens/param", "source": "config"}

Design: compute() returns JSON only: name -> {"value": number | str | None, "unit", "source", "note"?, ...}.
series(run) turns the log's records into numpy arrays. The detectors take both, (facts, series), and stay
pure; build() returns the pair so that diagnose computes each once. A fact that cannot be known has value
None and a note "unknown: <what would provide it>".

Sources: "log" (lines of the log), "header" (our train.py's config/info lines), "config" (--config; where a
config was given without a key, nanoGPT's default, and the note says so), "meta" (prepare.py's meta.json),
"estimate" (derived under assumptions the note states).

numpy only (no scipy, no torch): train.py calls the detectors at every eval and diagnose must start fast.
"""

import math
import re
from dataclasses import dataclass

import numpy as np

from plateau import gpus, logfmt
from plateau.config import FIELDS

# ---------------------------------------------------------------- statistics

Z95 = 1.959964  # two-sided 95% quantile of the normal distribution
MAD_TO_SIGMA = 1.4826  # median absolute deviation -> standard deviation for normal noise
MAX_POINTS = 300  # Theil-Sen and Mann-Kendall are O(n^2): longer series are binned to this many medians
FIT_MIN_POINTS = 5  # a 3-parameter curve needs a few more points than parameters to say anything
FIT_ALPHAS = np.geomspace(0.02, 3.0, 160)  # power-law exponents tried; LLM data exponents are 0.05-1


def finite(x, y=None):
    """x (and y) where both are finite, as float arrays."""
    x = np.asarray(x, float)
    if y is None:
        return x[np.isfinite(x)]
    y = np.asarray(y, float)
    m = np.isfinite(x) & np.isfinite(y)
    return x[m], y[m]


def robust_sigma(x):
    """Standard deviation from the median absolute deviation; None below 3 points."""
    x = finite(x)
    if x.size < 3:
        return None
    return float(MAD_TO_SIGMA * np.median(np.abs(x - np.median(x))))


def diff_noise(y):
    """Noise of a series from its first differences: MAD / sqrt(2) removes a slow trend."""
    y = finite(y)
    s = robust_sigma(np.diff(y)) if y.size >= 4 else None
    return None if s is None else s / math.sqrt(2)


def scatter_noise(y):
    """Noise of a series about a smooth curve: MAD of second differences / sqrt(6) removes slope and most
    curvature (var of y[i-1] - 2 y[i] + y[i+1] is 6 sigma^2 for independent noise). None below 6 points."""
    y = finite(y)
    s = robust_sigma(np.diff(y, 2)) if y.size >= 6 else None
    return None if s is None else s / math.sqrt(6)


def bin_median(x, y, max_points=MAX_POINTS):
    """Medians of consecutive blocks, so that O(n^2) statistics stay fast on 600k-line logs."""
    x, y = finite(x, y)
    if x.size <= max_points:
        return x, y
    k = math.ceil(x.size / max_points)
    n = x.size // k * k
    return np.median(x[:n].reshape(-1, k), 1), np.median(y[:n].reshape(-1, k), 1)


def theil_sen(x, y):
    """Theil-Sen slope with Sen's (1968) 95% interval: (slope, intercept, lo, hi), or None below 3 points.

    Same estimator and interval as scipy.stats.theilslopes (tests check it), without importing scipy."""
    x, y = bin_median(x, y)
    n = x.size
    if n < 3 or np.ptp(x) == 0:
        return None
    i, j = np.triu_indices(n, 1)
    dx = x[j] - x[i]
    keep = dx > 0
    slopes = np.sort((y[j] - y[i])[keep] / dx[keep])
    if slopes.size == 0:
        return None
    slope = float(np.median(slopes))
    var = (n * (n - 1) * (2 * n + 5) - _ties(x) - _ties(y)) / 18.0
    sd = math.sqrt(max(var, 0.0))
    m = slopes.size
    hi = slopes[min(int(round((m + Z95 * sd) / 2)), m - 1)]
    lo = slopes[max(int(round((m - Z95 * sd) / 2)) - 1, 0)]
    return slope, float(np.median(y) - slope * np.median(x)), float(lo), float(hi)


def _ties(v):
    _, counts = np.unique(v, return_counts=True)
    counts = counts[counts > 1]
    return float(np.sum(counts * (counts - 1) * (2 * counts + 5)))


def mann_kendall(x, y):
    """Mann-Kendall trend test of y against x: (tau, two-sided p), normal approximation; None below 4 points."""
    x, y = bin_median(x, y)
    n = x.size
    if n < 4:
        return None
    i, j = np.triu_indices(n, 1)
    s = float(np.sum(np.sign(x[j] - x[i]) * np.sign(y[j] - y[i])))
    var = (n * (n - 1) * (2 * n + 5) - _ties(y)) / 18.0
    z = 0.0 if var <= 0 else (s - math.copysign(1.0, s)) / math.sqrt(var) if s else 0.0
    return s / (n * (n - 1) / 2), math.erfc(abs(z) / math.sqrt(2))


def fit_power(x, y):
    """Least-squares L(x) = E + A * x**-alpha (A > 0) by profiling alpha over a grid.

    Returns {"E", "A", "alpha", "rmse", "n", "E_lo", "E_hi", "edge"} or None: E_lo..E_hi is the range of E over
    the alphas whose SSE is within an F(1, n-3) ~ 4 margin of the best (a ~95% profile interval); edge is True
    when the best alpha is at the end of the grid (the curve is not a saturating power law)."""
    x, y = finite(x, y)
    keep = x > 0
    x, y = x[keep], y[keep]
    n = x.size
    if n < FIT_MIN_POINTS or np.ptp(x) == 0:
        return None
    xmax = x.max()
    e, a, sse = _fit_grid(x / xmax, y, FIT_ALPHAS)
    k = int(np.argmin(sse))
    if not np.isfinite(sse[k]):
        return None
    edge = k in (0, len(FIT_ALPHAS) - 1)
    if not edge:  # refine between the neighbouring grid points
        fine = np.linspace(FIT_ALPHAS[k - 1], FIT_ALPHAS[k + 1], 41)
        e2, a2, sse2 = _fit_grid(x / xmax, y, fine)
        alphas, e, a, sse = (np.concatenate([FIT_ALPHAS, fine]), np.concatenate([e, e2]), np.concatenate([a, a2]),
                             np.concatenate([sse, sse2]))
        k = int(np.argmin(sse))
    else:
        alphas = FIT_ALPHAS
    near = sse <= sse[k] * (1 + 4.0 / max(n - 3, 1)) + 1e-12
    alpha = float(alphas[k])
    return {"E": float(e[k]), "A": float(a[k] * xmax**alpha), "alpha": alpha, "rmse": math.sqrt(sse[k] / n),
            "n": int(n), "E_lo": float(e[near].min()), "E_hi": float(e[near].max()), "edge": edge}


def _fit_grid(xs, y, alphas):
    """(E, A, SSE) of the least-squares line in z = xs**-alpha for each alpha; SSE inf where A <= 0."""
    z = xs[None, :] ** -alphas[:, None]  # (alphas, n)
    zm, ym = z.mean(1), y.mean()
    var = ((z - zm[:, None]) ** 2).sum(1)
    a = np.where(var > 0, ((z - zm[:, None]) * (y - ym)).sum(1) / np.where(var > 0, var, 1), 0.0)
    e = ym - a * zm
    sse = ((y[None, :] - e[:, None] - a[:, None] * z) ** 2).sum(1)
    return e, a, np.where(a > 0, sse, np.inf)


def power_at(fit, x):
    return fit["E"] + fit["A"] * float(x) ** -fit["alpha"]


# ---------------------------------------------------------------- series


@dataclass
class Series:
    """The run's records as float arrays (nan where a field is missing), sorted by step."""

    fmt: str | None
    scope: str | None  # 'micro_batch' (an iter loss is one micro-batch's) or 'batch' (the step's mean); None: unknown
    step: np.ndarray  # eval steps
    train: np.ndarray  # eval-mode train loss
    val: np.ndarray
    train_se: np.ndarray
    val_se: np.ndarray
    eval_ms: np.ndarray  # eval pass time (our format)
    it: np.ndarray  # iter numbers
    loss: np.ndarray  # iter loss, nan/inf kept
    time_ms: np.ndarray
    mfu: np.ndarray  # percent, as logged
    lr: np.ndarray
    gnorm: np.ndarray
    eval_bad: np.ndarray  # bool per eval: a loss logged as nan/inf (a missing loss is nan but not bad)


MAX_ABS = 1e9  # a logged magnitude above this is a blow-up: losses become inf (diverged), other fields nan


def _arr(records, name, big=np.nan):
    values = [getattr(r, name, None) for r in records]
    try:
        a = np.array(values, dtype=float)  # None -> nan
    except (TypeError, ValueError, OverflowError):  # something other than a number or None: keep the numbers
        a = np.array([x if isinstance(x, (int, float)) and not isinstance(x, bool) and abs(x) < 1e300 else np.nan
                      for x in values], dtype=float)
    with np.errstate(invalid="ignore"):
        a[np.abs(a) > MAX_ABS] = big
    return a


def _sorted_unique(records, key):
    """Records ordered by step, the last of any repeated step kept."""
    keys = [getattr(r, key, None) for r in records]
    if all(type(k) is int for k in keys) and all(a < b for a, b in zip(keys, keys[1:], strict=False)):
        return list(records)
    by = {}
    for k, r in zip(keys, records, strict=True):
        if isinstance(k, int) and not isinstance(k, bool):
            by[k] = r
    return [by[k] for k in sorted(by)]


def series(run):
    ev = _sorted_unique(getattr(run, "evals", []) or [], "step")
    it = _sorted_unique(getattr(run, "iters", []) or [], "iter")
    return Series(
        fmt=run_format(run), scope=getattr(run, "iter_loss_scope", None),
        step=_arr(ev, "step"), train=_arr(ev, "train_loss", np.inf), val=_arr(ev, "val_loss", np.inf),
        train_se=_arr(ev, "train_se"), val_se=_arr(ev, "val_se"), eval_ms=_arr(ev, "time_ms"),
        it=_arr(it, "iter"), loss=_arr(it, "loss", np.inf), time_ms=_arr(it, "time_ms"), mfu=_arr(it, "mfu"),
        lr=_arr(it, "lr"), gnorm=_arr(it, "gnorm"),
        eval_bad=np.array([any(isinstance(x, float) and not abs(x) <= MAX_ABS for x in (e.train_loss, e.val_loss))
                           for e in ev], dtype=bool))


def run_format(run):
    fmt = getattr(run, "format", None)
    if fmt:
        return fmt
    if any(getattr(e, "val_se", None) is not None for e in run.evals) or "peak_tflops" in run.info:
        return "plateau"
    return "nanogpt" if run.evals or run.iters else None


# ---------------------------------------------------------------- reference data

# Token counts of nanoGPT's prepared datasets, printed by their prepare.py (comments at the end of each).
KNOWN_DATASETS = {
    "shakespeare_char": {"train_tokens": 1_003_854, "val_tokens": 111_540, "vocab_size": 65},
    "shakespeare": {"train_tokens": 301_966, "val_tokens": 36_059, "vocab_size": 50304},
    "openwebtext": {"train_tokens": 9_035_582_198, "val_tokens": 4_434_897, "vocab_size": 50304},
}
# nanoGPT's init_from='gpt2*' loads these shapes (vocab 50257, bias True), whatever n_layer/n_embd say.
GPT2_SHAPES = {"gpt2": (12, 768), "gpt2-medium": (24, 1024), "gpt2-large": (36, 1280), "gpt2-xl": (48, 1600)}
MODEL_KEYS = ("n_layer", "n_head", "n_embd", "block_size", "batch_size", "gradient_accumulation_steps",
              "learning_rate", "max_iters", "eval_interval", "eval_iters", "vocab_size", "warmup_iters")


def count_params(n_layer, n_embd, vocab_size, bias=False):
    """nanoGPT's get_num_params(): tied token embedding once, position embedding excluded.

    Per block 12 d^2 (qkv 3d^2, proj d^2, mlp 8d^2) + 2 LayerNorm weights (+ 13d biases); final LayerNorm."""
    d = n_embd
    block = 12 * d * d + (13 * d if bias else 2 * d)
    return int(n_layer * block + vocab_size * d + (2 * d if bias else d))


# ---------------------------------------------------------------- config


_NUM_RE = re.compile(r"[-+]?(?:\d[\d,]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_DTYPE_RE = re.compile(r"bfloat16|float16|float32|bf16|fp16|fp32", re.I)


LIMIT = 1e12  # no config count, size or token number is this large; larger is junk (and would overflow floats)
POSITIVE_KEYS = {"n_layer", "n_head", "n_embd", "vocab_size", "batch_size", "block_size", "gradient_accumulation_steps",
                 "eval_iters", "eval_interval", "log_interval", "max_iters", "lr_decay_iters", "learning_rate",
                 "tokens_per_iter"}


def number(x, positive=False, limit=LIMIT):
    """x if it is a finite real number of sane size (and > 0 if `positive`), else None."""
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        return None
    try:
        xf = float(x)
    except OverflowError:
        return None
    if not math.isfinite(xf) or abs(xf) > limit or (positive and xf <= 0):
        return None
    return x.item() if isinstance(x, (np.integer, np.floating)) else x


def _clean_info(info):
    """The log's info with numbers that make sense: counts and peaks positive, names strings."""
    out = {}
    for k, x in (info or {}).items():
        if k in ("device_name", "dtype", "device", "iter_loss_scope"):
            if isinstance(x, str):
                out[k] = x
        elif isinstance(x, (int, float)) and not isinstance(x, bool):
            y = number(x, positive=True)
            if y is not None:
                out[k] = int(y) if k in INT_INFO and float(y).is_integer() else y
    return out


INT_INFO = ("num_params", "tokens_per_iter", "vocab_size", "train_tokens", "val_tokens", "world_size", "epoch_iters")


def _coerce(key, v):
    """A config value as the type Config declares; descriptive strings ('40 (5x8, ...)') give their number."""
    want = FIELDS[key].type if key in FIELDS else None
    if key == "dtype" and isinstance(v, str):
        m = _DTYPE_RE.search(v)
        return {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}.get(m.group(0).lower(), m.group(0).lower()) \
            if m else None
    if want in (int, float) or key == "tokens_per_iter":
        if isinstance(v, bool):
            return None
        if isinstance(v, str):
            m = _NUM_RE.search(v)
            if not m:
                return None
            v = float(m.group(0).replace(",", ""))
        v = number(v, positive=key in POSITIVE_KEYS)
        if v is None or v < 0:
            return None
        if want is int or key == "tokens_per_iter":
            return int(v) if float(v).is_integer() else None
        return float(v)
    if want is bool:
        if isinstance(v, str):
            return {"true": True, "false": False}.get(v.strip().lower())
        return bool(v) if isinstance(v, (bool, int)) else None
    if want is str or key in ("dataset", "gpu"):
        return v if isinstance(v, str) else None
    return v


def resolve_config(run, config):
    """(cfg, source per key, conflicts): the log's config over --config; nanoGPT defaults fill the rest when
    either says anything about the model or batch (a stock config file or echo sets only what it changes)."""
    cfg, src, conflicts = {}, {}, []
    given = {}
    for k, v in (config or {}).items():
        k = "gpu" if k == "GPU" else k
        if k in FIELDS or k in ("dataset", "tokens_per_iter", "gpu"):
            c = _coerce(k, v)
            if c is not None:
                given[k] = c
    logged = {}
    for k, v in (getattr(run, "config", None) or {}).items():
        if k in FIELDS or k == "dataset":
            c = _coerce(k, v)
            if c is not None:
                logged[k] = c
    header = run_format(run) == "plateau" and len(logged) >= 0.8 * len(FIELDS)
    for k, v in given.items():
        cfg[k], src[k] = v, "config"
    for k, v in logged.items():
        plain = not (isinstance(v, str) and (" " in v or " " in str(given.get(k))))  # not a description
        if k in given and given[k] != v and plain and not (
                isinstance(v, float) and isinstance(given[k], (int, float)) and math.isclose(v, given[k])):
            conflicts.append(f"{k}: log {v!r}, --config {given[k]!r}")
        cfg[k], src[k] = v, "header" if header else "log"
    if "dataset" not in cfg and isinstance(cfg.get("data_dir"), str):
        cfg["dataset"] = cfg["data_dir"].rstrip("/").split("/")[-1]
        src["dataset"] = src["data_dir"]
    if any(k in cfg for k in MODEL_KEYS) and run_format(run) in (None, "nanogpt", "nanogpt-old", "plateau"):
        for k, f in FIELDS.items():
            if k not in cfg:
                cfg[k], src[k] = f.default, "default"
    return cfg, src, conflicts


# ---------------------------------------------------------------- facts


def fact(value, unit, source, note=None, **extra):
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not math.isfinite(value):
            value = None
        else:
            value = float(f"{value:.6g}")
    elif isinstance(value, np.integer):
        value = int(value)
    d = {"value": value, "unit": unit, "source": source if value is not None else None}
    if note:
        d["note"] = note
    d.update({k: _json_safe(x) for k, x in extra.items()})
    return d


def _json_safe(x):
    """nan/inf -> None, recursively (strict JSON has no such numbers)."""
    if isinstance(x, dict):
        return {k: _json_safe(y) for k, y in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(y) for y in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    return x


def unknown(unit, what):
    return fact(None, unit, None, f"unknown: {what}")


def _default_note(src, *keys):
    d = [k for k in keys if src.get(k) == "default"]
    return f"nanoGPT default for {', '.join(d)} (not in the config given)" if d else None


def compute(run, config=None, meta=None, gpu=None):
    """JSON-serialisable facts about `run` (a logfmt.Run); see the module docstring."""
    return build(run, config, meta, gpu)[0]


def build(run, config=None, meta=None, gpu=None):
    """(facts, series) for the detectors."""
    s = series(run)
    cfg, src, conflicts = resolve_config(run, config)
    info = _clean_info(getattr(run, "info", None))
    hsrc = hsrc_of(s)
    f = {"format": fact(s.fmt, "", "log") if s.fmt else unknown("", "no training lines")}

    def c(key, unit, what):
        if key in cfg and cfg[key] is not None:
            return fact(cfg[key], unit, "config" if src[key] == "default" else src[key], _default_note(src, key))
        return unknown(unit, what)

    for key, unit in (("n_layer", ""), ("n_head", ""), ("n_embd", ""), ("block_size", "tokens"),
                      ("batch_size", "sequences"), ("gradient_accumulation_steps", "micro-steps"),
                      ("dropout", ""), ("weight_decay", ""), ("beta2", ""), ("grad_clip", ""), ("dtype", ""),
                      ("device", ""), ("init_from", ""), ("dataset", ""), ("log_interval", "iters")):
        f[key] = c(key, unit, "pass --config")
    if info.get("dtype") and f["dtype"]["value"] is None:
        f["dtype"] = fact(info["dtype"], "", hsrc)

    # ---- model size
    vocab, vsrc, vnote = None, None, None
    if isinstance(info.get("vocab_size"), int) and info["vocab_size"] > 1:
        vocab, vsrc = info["vocab_size"], "log"
    elif cfg.get("vocab_size") and src.get("vocab_size") != "default":
        vocab, vsrc = cfg["vocab_size"], src["vocab_size"]
    elif cfg.get("dataset") in KNOWN_DATASETS:
        vocab, vsrc = KNOWN_DATASETS[cfg["dataset"]]["vocab_size"], "estimate"
        vnote = f"vocabulary of nanoGPT's prepared {cfg['dataset']}"
    elif isinstance(meta, dict) and type(meta.get("vocab_size")) is int and 0 < meta["vocab_size"] < LIMIT:
        vocab, vsrc = -(-meta["vocab_size"] // 64) * 64, "meta"
        vnote = f"data vocabulary {meta['vocab_size']} padded up to a multiple of 64, as nanoGPT's configs do"
    elif cfg.get("vocab_size"):
        vocab, vsrc, vnote = cfg["vocab_size"], "config", _default_note(src, "vocab_size")
    f["vocab_size"] = fact(vocab, "tokens", vsrc, vnote) if vocab else unknown(
        "tokens", "pass --config (vocab_size) or --meta")
    init = cfg.get("init_from") if isinstance(cfg.get("init_from"), str) else ""
    computed, cnote = None, None
    if init in GPT2_SHAPES:
        L, d = GPT2_SHAPES[init]
        computed, cnote = count_params(L, d, 50257, True), f"init_from='{init}' loads OpenAI's GPT-2 weights"
    elif cfg.get("n_layer") and cfg.get("n_embd") and vocab:
        computed = count_params(cfg["n_layer"], cfg["n_embd"], vocab, bool(cfg.get("bias", False)))
        cnote = (f"12 x {cfg['n_layer']} x {cfg['n_embd']}^2 + {vocab} x {cfg['n_embd']} + LayerNorm weights "
                 "(nanoGPT's count: position embeddings excluded, tied embedding once)")
        dn = _default_note(src, "n_layer", "n_embd", "vocab_size", "bias")
        cnote += f"; {dn}" if dn else ""
    printed = info.get("num_params") if isinstance(info.get("num_params"), (int, float)) else None
    if printed:
        note = None
        if computed:
            note = f"the config gives {computed / 1e6:.2f}M"
        f["num_params"] = fact(int(printed), "params", hsrc, note)
    elif computed:
        f["num_params"] = fact(computed, "params", "config", cnote)
    else:
        f["num_params"] = unknown("params", "pass --config (n_layer, n_embd, vocab_size) or a log with "
                                            "'number of parameters'")
    f["num_params_config"] = fact(computed, "params", "config", cnote) if computed else unknown(
        "params", "pass --config (n_layer, n_embd)")
    N = f["num_params"]["value"]

    # ---- tokens
    tpi_cfg = None
    if all(cfg.get(k) for k in ("batch_size", "block_size", "gradient_accumulation_steps")):
        tpi_cfg = cfg["batch_size"] * cfg["block_size"] * cfg["gradient_accumulation_steps"]
    if isinstance(info.get("tokens_per_iter"), (int, float)) and info["tokens_per_iter"] > 0:
        f["tokens_per_iter"] = fact(int(info["tokens_per_iter"]), "tokens", hsrc,
                                    f"the config gives {tpi_cfg:,}" if tpi_cfg and tpi_cfg != info[
                                        "tokens_per_iter"] else None)
    elif tpi_cfg:
        dn = _default_note(src, "batch_size", "block_size", "gradient_accumulation_steps")
        f["tokens_per_iter"] = fact(tpi_cfg, "tokens", "config", f"batch_size {cfg['batch_size']} x block_size "
                                    f"{cfg['block_size']} x gradient_accumulation_steps "
                                    f"{cfg['gradient_accumulation_steps']}" + (f"; {dn}" if dn else ""))
    elif isinstance(cfg.get("tokens_per_iter"), int):
        f["tokens_per_iter"] = fact(cfg["tokens_per_iter"], "tokens", "config")
    elif isinstance(info.get("train_tokens"), int) and isinstance(info.get("epoch_iters"), int):
        f["tokens_per_iter"] = fact(info["train_tokens"] // info["epoch_iters"], "tokens", "estimate",
                                    f"loaded {info['train_tokens']:,} tokens / 1 epoch = {info['epoch_iters']:,} "
                                    "batches (at most 1/epoch above the batch)")
    else:
        f["tokens_per_iter"] = unknown("tokens", "pass --config (batch_size, block_size, "
                                                 "gradient_accumulation_steps)")
    f["tokens_per_iter_config"] = fact(tpi_cfg, "tokens", "config") if tpi_cfg else unknown("tokens", "pass --config")
    tpi = f["tokens_per_iter"]["value"]
    steps = np.concatenate([s.it, s.step])
    last = int(np.nanmax(steps)) if np.isfinite(steps).any() else None
    f["iters_done"] = fact(last, "iters", "log") if last is not None else unknown("iters", "no training lines")
    seen = last * tpi if last is not None and tpi else None
    f["tokens_seen"] = fact(seen, "tokens", f["tokens_per_iter"]["source"],
                            f"{last:,} iters x {tpi:,} tokens/iter") if seen is not None else unknown(
        "tokens", "pass --config so tokens per iteration are known")
    dtok, dsrc, dnote = _split_tokens("train", meta, info, cfg, hsrc)
    f["dataset_tokens"] = fact(dtok, "tokens", dsrc, dnote) if dtok else unknown(
        "tokens", "pass --meta data/<name>/meta.json (prepare.py writes it)")
    vtok, vsrc, vnote = _split_tokens("val", meta, info, cfg, hsrc)
    f["val_tokens"] = fact(vtok, "tokens", vsrc, vnote) if vtok else unknown("tokens", "pass --meta")
    f["epochs"] = fact(seen / dtok, "epochs", "estimate", f"{seen:,} tokens seen / {dtok:,} dataset tokens") \
        if seen and dtok else unknown("epochs", "pass --meta (dataset tokens) and --config (tokens per iteration)")
    f["tokens_per_param"] = fact(seen / N, "tokens/param", "estimate",
                                 "compute-optimal is about 20 (Hoffmann et al. 2022)") if seen and N else unknown(
        "tokens/param", "pass --config (model size and batch)")

    _schedule_facts(f, cfg, src, s)
    _loss_facts(f, s, cfg, tpi)
    _time_facts(f, s, cfg, info, gpu, N, tpi, run)
    claim = _claimed_size(config, run)
    f["claimed_params"] = fact(claim[0], "params", "log" if claim[1] == "log" else "config",
                               f"from {claim[2]!r}") if claim else unknown("params", "no size named in the config")
    f["config_conflicts"] = fact(len(conflicts), "keys", "config", "; ".join(conflicts)) if conflicts else fact(
        0, "keys", "config" if config else "log")
    return f, s


def _split_tokens(split, meta, info, cfg, hsrc):
    """(tokens, source, note) of a data split: meta.json, else the log's header, else a known nanoGPT dataset."""
    splits = meta.get("splits") if isinstance(meta, dict) else None
    row = splits.get(split) if isinstance(splits, dict) else None
    if isinstance(row, dict) and number(row.get("tokens"), positive=True):
        return int(row["tokens"]), "meta", None
    if isinstance(meta, dict) and number(meta.get(f"{split}_tokens"), positive=True):
        return int(meta[f"{split}_tokens"]), "meta", None
    if isinstance(info.get(f"{split}_tokens"), int):
        return info[f"{split}_tokens"], hsrc, None
    if cfg.get("dataset") in KNOWN_DATASETS:
        return (KNOWN_DATASETS[cfg["dataset"]][f"{split}_tokens"], "estimate",
                f"{split}.bin of nanoGPT's data/{cfg['dataset']}/prepare.py")
    return None, None, None


def _schedule_facts(f, cfg, src, s):
    for key, unit in (("learning_rate", "lr"), ("min_lr", "lr"), ("warmup_iters", "iters"),
                      ("lr_decay_iters", "iters"), ("max_iters", "iters"), ("eval_iters", "batches"),
                      ("eval_interval", "iters")):
        if key in cfg and cfg[key] is not None:
            f[key] = fact(cfg[key], unit, "config" if src[key] == "default" else src[key],
                          _default_note(src, key))
        else:
            f[key] = unknown(unit, "pass --config")
    lr = finite(s.lr)
    lr = lr[lr > 0]
    if f["learning_rate"]["value"] is None and lr.size:
        f["learning_rate"] = fact(float(lr.max()), "lr", "log", "largest logged lr")
    if f["eval_interval"]["value"] is None and np.isfinite(s.step).sum() >= 2:
        d = np.diff(finite(s.step))
        d = d[d > 0]
        if d.size:
            f["eval_interval"] = fact(int(np.median(d)), "iters", "log", "spacing of the eval lines")
    sched = None
    if "learning_rate" in cfg:
        if cfg.get("decay_lr") is False or cfg.get("lr_schedule") == "constant":
            sched = f"warmup {cfg.get('warmup_iters', 0)}, then constant {cfg['learning_rate']:g}"
        elif cfg.get("lr_schedule") == "wsd":
            sched = (f"warmup {cfg.get('warmup_iters', 0)}, constant {cfg['learning_rate']:g}, linear to "
                     f"{cfg.get('min_lr', 0):g} over the last {cfg.get('wsd_decay_frac', 0.2):.0%} of "
                     f"{cfg.get('max_iters')}")
        elif cfg.get("lr_decay_iters"):
            sched = (f"warmup {cfg.get('warmup_iters', 0)}, cosine {cfg['learning_rate']:g} -> "
                     f"{cfg.get('min_lr', 0):g} at iter {cfg['lr_decay_iters']}")
    if sched:
        f["lr_schedule"] = fact(sched, "", "config", _default_note(src, "decay_lr", "lr_decay_iters", "min_lr",
                                                                   "warmup_iters"))
    elif lr.size >= 3:
        f["lr_schedule"] = fact(f"logged: {lr[0]:.3g} -> max {lr.max():.3g} -> {lr[-1]:.3g}", "", "log")
    else:
        f["lr_schedule"] = unknown("", "pass --config (learning_rate, warmup_iters, lr_decay_iters, min_lr) or a "
                                       "log with lr")
    last = f["iters_done"]["value"]
    lr_last = None
    if lr.size:
        lr_last = fact(float(lr[-1]), "lr", "log")
    elif sched and last is not None:
        lr_last = fact(lr_at(cfg, last), "lr", "estimate", "the schedule in the config at the last iter")
    f["lr_last"] = lr_last or unknown("lr", "pass --config")


def lr_at(cfg, it):
    """nanoGPT's get_lr (and our constant / wsd schedules) at iteration `it`."""
    lr, warm = cfg.get("learning_rate"), cfg.get("warmup_iters") or 0
    lo = cfg.get("min_lr") or 0.0
    if lr is None:
        return None
    if cfg.get("decay_lr") is False:
        return lr  # nanoGPT: no warmup either when decay_lr is False
    if it < warm:
        return lr * (it + 1) / (warm + 1)
    if cfg.get("lr_schedule") == "constant":
        return lr
    if cfg.get("lr_schedule") == "wsd":
        mx = cfg.get("max_iters") or it
        start = mx * (1 - (cfg.get("wsd_decay_frac") or 0.2))
        return lr if it < start else lr + min(1.0, (it - start) / max(mx - start, 1)) * (lo - lr)
    dec = cfg.get("lr_decay_iters")
    if not dec or it > dec:
        return lo if dec else lr
    ratio = (it - warm) / max(dec - warm, 1)
    return lo + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - lo)


SCATTER_EXCESS = 3.0  # eval scatter over 3x the sampling error is not sampling noise
INITIAL_MAX_ITER = 10  # a log whose first loss is this early shows the start of training


def fit_start(last, warmup):
    """First step the power-law fit uses: past warmup and the first 10% of the run (the fast initial drop
    from ln(vocab) is not part of the slow power-law regime)."""
    return max(1.0, float(warmup or 0), 0.1 * float(last or 0))


def _loss_facts(f, s, cfg, tpi):
    v_ok = np.isfinite(s.val)
    last = f["iters_done"]["value"]
    if v_ok.any():
        k = int(np.nanargmin(np.where(v_ok, s.val, np.nan)))
        f["best_val_loss"] = fact(s.val[k], "nats", "log")
        f["best_val_step"] = fact(int(s.step[k]), "iters", "log")
        j = int(np.flatnonzero(v_ok)[-1])
        f["last_val_loss"] = fact(s.val[j], "nats", "log", f"at step {int(s.step[j])}")
    else:
        for name in ("best_val_loss", "best_val_step", "last_val_loss"):
            f[name] = unknown("iters" if name.endswith("step") else "nats", "no eval lines with a val loss")
    t_ok = np.isfinite(s.train)
    if t_ok.any():
        j = int(np.flatnonzero(t_ok)[-1])
        f["last_train_loss"] = fact(s.train[j], "nats", "log", f"eval mode, at step {int(s.step[j])}")
    else:
        f["last_train_loss"] = unknown("nats", "no eval lines with a train loss")

    # iter-loss noise: robust, on the part of the run past the fast initial drop
    it_ok = np.isfinite(s.loss)
    start = fit_start(last, cfg.get("warmup_iters"))
    late = s.loss[it_ok & (s.it >= start)]
    if late.size < 8:
        late = s.loss[it_ok][1:]
    sigma = diff_noise(late)
    scope = s.scope or logfmt.LOSS_SCOPE.get(s.fmt, "micro_batch")
    accum = cfg.get("gradient_accumulation_steps")
    f["iter_loss_noise"] = fact(sigma, "nats", "estimate",
                                f"1.4826 x MAD of first differences / sqrt(2) over {late.size} iter losses; "
                                + ("each is one micro-batch in train mode (stock nanoGPT)" if scope == "micro_batch"
                                   else "each is the mean over the step's micro-batches")) \
        if sigma is not None else unknown("nats", "needs 4+ finite iter losses")
    sigma_micro = None
    if sigma is not None:
        if scope == "micro_batch":
            sigma_micro = sigma
        elif accum:
            sigma_micro = sigma * math.sqrt(accum)

    # eval standard error: logged; else from the iter-loss noise and eval_iters (sampling), checked against the
    # evals' own scatter about a smooth curve. Scatter well above the sampling error in val alone is eval noise
    # (a small or unrepresentative val split) and counts; in train and val together it is the model moving.
    # the se of the evals the diagnosis is about: early ones, at a loss several times higher, have larger se
    logged = finite(s.val_se[s.step >= start])
    if not logged.size:
        logged = finite(s.val_se)
    t_late = s.train[np.isfinite(s.train) & (s.step >= start)]
    v_late = s.val[v_ok & (s.step >= start)]
    scatter = scatter_noise(v_late if v_late.size >= 6 else s.val[v_ok][1:])
    scatter_t = scatter_noise(t_late if t_late.size >= 6 else s.train[np.isfinite(s.train)][1:])
    n_eval = cfg.get("eval_iters")
    f["eval_scatter"] = fact(scatter, "nats", "estimate", "val's scatter about a smooth curve: MAD of second "
                             "differences / sqrt(6)") if scatter is not None else unknown("nats", "needs 6+ evals")
    f["eval_scatter_train"] = fact(scatter_t, "nats", "estimate", "the same for the eval-mode train loss") \
        if scatter_t is not None else unknown("nats", "needs 6+ evals with a train loss")
    sampling = sigma_micro / math.sqrt(n_eval) if sigma_micro is not None and n_eval else None
    val_only = False
    if logged.size:
        f["eval_se"] = fact(float(np.median(logged)), "nats", hsrc_of(s), f"logged val se (median of {logged.size} "
                            "late evals)")
    elif sampling is not None:
        how = (f"estimate: iter-loss noise {sigma_micro:.3g} per micro-batch / sqrt(eval_iters {n_eval}) = "
               f"{sampling:.3g}")
        model_moves = scatter_t is not None and scatter_t > SCATTER_EXCESS * sampling
        val_only = scatter is not None and scatter > sampling and not model_moves
        if val_only:
            f["eval_se"] = fact(scatter, "nats", "estimate", f"{how}; val scatters more, {scatter:.3g}: used")
        else:
            f["eval_se"] = fact(sampling, "nats", "estimate", how + (
                f"; train and val both scatter ~{scatter_t:.3g}: the model's loss moves, not the eval"
                if model_moves else ""))
    elif scatter is not None:
        f["eval_se"] = fact(scatter, "nats", "estimate", "estimate: scatter of val about a smooth curve (MAD of "
                            "second differences / sqrt(6)); pass --config (eval_iters) for the sampling error")
    else:
        f["eval_se"] = unknown("nats", "pass --config (eval_iters) or log 6+ evals")
    t_logged = finite(s.train_se)
    if t_logged.size:
        f["train_se"] = fact(float(np.median(t_logged)), "nats", "header", "logged train se (median)")
    elif sampling is not None and val_only:
        f["train_se"] = fact(sampling, "nats", "estimate", "sampling error: val's excess scatter is val's own")
    elif f["eval_se"]["value"] is not None:
        f["train_se"] = fact(f["eval_se"]["value"], "nats", "estimate", "taken equal to val's")
    else:
        f["train_se"] = unknown("nats", "as eval_se")

    # val - train gap
    both = v_ok & t_ok
    se = f["eval_se"]["value"]
    if both.any():
        gaps = (s.val - s.train)[both]
        tail = gaps[-min(5, gaps.size):]
        g = float(np.mean(tail))
        se_t = f["train_se"]["value"] or se
        se_gap = math.sqrt(se**2 + se_t**2) / math.sqrt(tail.size) if se else None
        z = g / se_gap if se_gap else None
        note = f"mean of the last {tail.size} evals"
        if se_gap:
            note += f"; {z:+.1f} standard errors ({se_gap:.3g})"
        if g < 0:
            note += ("; val below train: both are eval-mode numbers (dropout off), so this is the split "
                     "(which documents landed in val) and sampling noise, not dropout")
        f["val_train_gap"] = fact(g, "nats", "log", note, z=None if z is None else round(z, 2))
    else:
        f["val_train_gap"] = unknown("nats", "needs eval lines with both train and val loss")

    # asymptote: L = E + A x^-alpha on val (else eval train, else iter loss) past the initial drop
    x, y, what = _fit_series(s, start)
    fit = fit_power(x, y) if x.size else None
    if fit and not fit["edge"] and last:
        k = tpi or 1
        x_unit = "tokens" if tpi else "iters"
        A = fit["A"] * k ** fit["alpha"]
        remaining = power_at(fit, last) - fit["E"]
        g2 = power_at(fit, last) - power_at(fit, 2 * last)
        f["loss_asymptote"] = fact(fit["E"], "nats", "estimate",
                                   f"L = E + A x^-alpha fitted to {fit['n']} {what} from step {int(x[0])}; "
                                   f"E 95% range {fit['E_lo']:.3f}-{fit['E_hi']:.3f}; rmse {fit['rmse']:.3g}",
                                   fit={"E": round(fit["E"], 5), "A": float(f"{A:.6g}"),
                                        "alpha": round(fit["alpha"], 4), "x": x_unit},
                                   E_lo=round(fit["E_lo"], 4), E_hi=round(fit["E_hi"], 4),
                                   rmse=float(f"{fit['rmse']:.3g}"), points=fit["n"], series=what)
        f["remaining_gain"] = fact(remaining, "nats", "estimate",
                                   f"fitted loss at step {last:,} minus the asymptote: the most more data can give "
                                   "this model")
        f["gain_per_doubling"] = fact(g2, "nats", "estimate", "fitted loss drop from doubling the run's length")
    else:
        why = ("the curve is not a saturating power law (e.g. val rising)" if fit else
               "no falling curve fits: the loss is flat or rising" if x.size >= FIT_MIN_POINTS else
               f"needs {FIT_MIN_POINTS}+ evals past step {int(start)}")
        f["loss_asymptote"] = fact(None, "nats", None, f"unknown: {why}", fit=None)
        f["remaining_gain"] = unknown("nats", why)
        f["gain_per_doubling"] = unknown("nats", why)

    # iter loss (train mode, dropout on; one micro-batch in stock nanoGPT) against the eval-mode train loss
    tm = np.isfinite(s.train) & (s.step >= start)
    if tm.sum() >= 3 and it_ok.sum() >= 8:
        near = np.interp(s.step[tm], s.it[it_ok], s.loss[it_ok])
        off = float(np.median(near - s.train[tm]))
        f["iter_vs_eval_train"] = fact(off, "nats", "estimate", f"median iter loss minus eval-mode train loss at "
                                       f"{int(tm.sum())} evals: the iter line is measured in train mode (dropout "
                                       f"{cfg.get('dropout', 'unknown')})" + (" on one micro-batch"
                                                                               if scope == "micro_batch" else ""))
    else:
        f["iter_vs_eval_train"] = unknown("nats", "needs iter lines and 3+ evals with a train loss")
    # recent trend of val (else iter loss): Theil-Sen slope per 1000 iters, Mann-Kendall p
    f["val_trend"] = trend_fact(s, last)
    if v_ok.any() and s.step[v_ok][0] == 0:
        f["initial_loss"] = fact(s.val[v_ok][0], "nats", "log", "val loss at step 0")
    elif it_ok.any() and s.it[it_ok][0] <= INITIAL_MAX_ITER:
        f["initial_loss"] = fact(s.loss[it_ok][0], "nats", "log", f"iter {int(s.it[it_ok][0])} loss")
    else:
        f["initial_loss"] = unknown("nats", "the log does not start at the beginning of training")
    V = f["vocab_size"]["value"]
    f["ln_vocab"] = fact(math.log(V), "nats", f["vocab_size"]["source"], "loss of a uniform guess") \
        if V and V > 1 else unknown("nats", "vocab_size")
    bad = ~np.isfinite(s.loss)  # an iter line always carries a loss: nan here is a logged nan
    f["nonfinite_iters"] = fact(int(bad.sum()), "iters", "log",
                                f"first at iter {int(s.it[bad][0])}" if bad.any() else None)


def hsrc_of(s):
    return "header" if s.fmt == "plateau" else "log"


def _fit_series(s, start):
    for y, what in ((s.val, "val losses"), (s.train, "eval train losses")):
        m = np.isfinite(y) & (s.step >= start) & (s.step > 0)
        if m.sum() >= FIT_MIN_POINTS:
            return s.step[m], y[m], what
    m = np.isfinite(s.loss) & (s.it >= start) & (s.it > 0)
    if m.sum() >= 4 * FIT_MIN_POINTS:
        x, y = bin_median(s.it[m], s.loss[m], max_points=60)
        return x, y, "iter losses (binned medians)"
    return np.array([]), np.array([]), ""


def trend(s, frm):
    """(x, y, what) of the series used for recent trends: val from step `frm`, else binned iter loss."""
    m = np.isfinite(s.val) & (s.step >= frm)
    if m.sum() >= 4:
        return s.step[m], s.val[m], "val"
    m = np.isfinite(s.train) & (s.step >= frm)
    if m.sum() >= 4:
        return s.step[m], s.train[m], "eval train"
    m = np.isfinite(s.loss) & (s.it >= frm)
    if m.sum() >= 8:
        x, y = bin_median(s.it[m], s.loss[m], max_points=max(8, min(60, int(m.sum()) // 4)))
        return x, y, "iter loss"
    return np.array([]), np.array([]), ""


def trend_fact(s, last):
    if not last:
        return unknown("nats/1k iters", "no training lines")
    x, y, what = trend(s, last / 2)
    ts = theil_sen(x, y) if x.size else None
    mk = mann_kendall(x, y) if x.size else None
    if ts is None or mk is None:
        return unknown("nats/1k iters", "needs 4+ evals (or 8+ iter losses) in the second half of the run")
    return fact(ts[0] * 1000, "nats/1k iters", "estimate",
                f"Theil-Sen slope of {what} over steps {int(x[0])}-{int(x[-1])} ({x.size} points), 95% CI "
                f"{ts[2] * 1000:+.3g} to {ts[3] * 1000:+.3g}; Mann-Kendall p = {mk[1]:.2g}",
                ci=[float(f"{ts[2] * 1000:.4g}"), float(f"{ts[3] * 1000:.4g}")], p=float(f"{mk[1]:.3g}"),
                series=what, first_step=int(x[0]), points=int(x.size))


def _time_facts(f, s, cfg, info, gpu, N, tpi, run):
    t_ok = np.isfinite(s.time_ms) & (s.time_ms > 0)
    first = s.it[t_ok][0] if t_ok.any() else None
    evals = set(finite(s.step).tolist())
    in_iter = s.fmt not in ("plateau",)  # stock nanoGPT times the eval and checkpoint inside that iteration
    at_eval = np.isin(s.it, list(evals)) & in_iter
    normal = t_ok & ~at_eval & (s.it != first)
    t_iter = float(np.median(s.time_ms[normal])) if normal.any() else None
    f["time_per_iter_ms"] = fact(t_iter, "ms", "log", f"median of {int(normal.sum())} iters, eval iterations and "
                                 "the first (compile, warm-up) excluded") if t_iter else unknown(
        "ms", "a log with iteration times")
    ev_iters = t_ok & at_eval & (s.it != first) & (s.it > 0)
    ckpt = [t for _, t in (getattr(run, "checkpoints", None) or []) if isinstance(t, (int, float))]
    eval_ms = finite(s.eval_ms)
    over, note = None, None
    if eval_ms.size:
        over = float(np.median(eval_ms)) + (float(np.median(ckpt)) if ckpt else 0.0)
        note = "eval pass (logged on the eval lines)" + (" + checkpoint save" if ckpt else "")
    elif ev_iters.any() and t_iter:
        over = float(np.median(s.time_ms[ev_iters])) - t_iter
        note = (f"iterations at eval steps take {np.median(s.time_ms[ev_iters]):.0f} ms vs {t_iter:.0f} ms: nanoGPT "
                "counts the eval pass and the checkpoint save in that iteration's time, it is not a slowdown")
    f["eval_overhead_ms"] = fact(over, "ms", "log", note) if over is not None else unknown(
        "ms", "iteration times at eval steps (or our log's eval times)")
    f["checkpoint_ms"] = fact(float(np.median(ckpt)), "ms", "log") if ckpt else (
        fact(None, "ms", None, "included in eval_overhead_ms (stock nanoGPT times them together)")
        if over is not None and in_iter else unknown("ms", "our log's checkpoint lines"))
    ei = f["eval_interval"]["value"]
    if over is not None and t_iter and ei:
        f["eval_overhead_frac"] = fact(over / (ei * t_iter + over), "fraction", "estimate",
                                       f"{over:.0f} ms per eval every {ei} iters of {t_iter:.0f} ms")
    else:
        f["eval_overhead_frac"] = unknown("fraction", "eval overhead, eval_interval and iteration time")
    if t_iter:
        slow = normal & (s.time_ms > STALL_FACTOR * t_iter)
        tot = float(np.sum(s.time_ms[normal]))
        frac = float(np.sum(s.time_ms[slow] - t_iter)) / tot if tot > 0 else 0.0
        f["stall_frac"] = fact(frac, "fraction", "estimate",
                               f"{int(slow.sum())} of {int(normal.sum())} logged iterations took over {STALL_FACTOR}x "
                               f"the median" if slow.any() else "no logged iteration took over "
                               f"{STALL_FACTOR}x the median", stalls=int(slow.sum()))
    else:
        f["stall_frac"] = unknown("fraction", "iteration times")
    f["tokens_per_sec"] = fact(tpi / t_iter * 1000, "tokens/s", "estimate") if tpi and t_iter else unknown(
        "tokens/s", "tokens per iteration and iteration time")

    # ---- MFU
    ref = getattr(run, "mfu_ref", None) or logfmt.MFU_REF.get(s.fmt, "a100")
    steady, how = _steady_mfu(s, normal, t_iter)
    f["mfu_logged"] = fact(steady, "%", "log", how) if steady is not None else unknown("%", "a log with mfu")
    gname, gsrc = None, None
    if gpu:
        gname, gsrc = gpu, "config"
    elif info.get("device_name"):
        gname, gsrc = info["device_name"], "header"
    elif isinstance(cfg.get("gpu"), str):  # a label's or config's 'GPU' entry
        gname, gsrc = cfg["gpu"], "config"
    g = gpus.lookup(gname) if gname else None
    dtype = f["dtype"]["value"] if f["dtype"]["value"] in ("float16", "bfloat16", "float32") else None
    peak = None
    if g:
        peak = gpus.peak_tflops(g.name, dtype or ("bfloat16" if g.bf16 else "float16"))
    f["gpu"] = fact(g.name if g else gname, "", gsrc, None if g else (
        "not in plateau/gpus.py" if gname else None)) if gname else unknown("", "pass --gpu, e.g. --gpu 'RTX 4070'")
    f["gpu_peak_tflops"] = fact(peak, "TFLOPS", "estimate", f"{g.name} dense {dtype or 'bf16/fp16'} tensor peak, "
                                f"fp32 accumulate ({g.source})") if peak else unknown("TFLOPS", "pass --gpu")
    mem = g.memory_gb if g else info.get("gpu_memory_gb")
    f["gpu_memory_gb"] = fact(mem, "GB", "estimate" if g else hsrc_of(s)) if mem else unknown("GB", "pass --gpu")
    if ref == "a100":
        ref_tf = gpus.A100_BF16_PEAK_TFLOPS
        f["mfu_reference_tflops"] = fact(ref_tf, "TFLOPS", "estimate", "stock nanoGPT divides by an A100's 312 "
                                         "TFLOPS bf16 peak whatever the GPU")
    else:
        ref_tf = info.get("peak_tflops") if isinstance(info.get("peak_tflops"), (int, float)) else peak
        f["mfu_reference_tflops"] = fact(ref_tf, "TFLOPS", hsrc_of(s), "the trainer's own GPU peak") if ref_tf \
            else unknown("TFLOPS", "the trainer's reference peak")
    achieved, anote = None, None
    if steady is not None and ref_tf:
        achieved, anote = steady / 100 * ref_tf, f"{steady:.3g}% of {ref_tf:g} TFLOPS"
    fpt = info.get("flops_per_token")
    if not isinstance(fpt, (int, float)) and N and cfg.get("n_layer") and cfg.get("n_embd") and cfg.get("block_size"):
        fpt = 6 * N + 12 * cfg["n_layer"] * cfg["n_embd"] * cfg["block_size"]  # nanoGPT's estimate_mfu (PaLM)
    if isinstance(fpt, (int, float)) and tpi and t_iter:
        from_cfg = fpt * tpi / (t_iter / 1000) / 1e12
        if achieved is None:
            achieved, anote = from_cfg, "flops per token x tokens per iter / iteration time"
        else:
            anote += f"; config and time give {from_cfg:.3g}"
    f["achieved_tflops"] = fact(achieved, "TFLOPS", "estimate", anote) if achieved else unknown(
        "TFLOPS", "a log with mfu, or --config and iteration times")
    if achieved and peak:
        f["mfu_real"] = fact(100 * achieved / peak, "%", "estimate", f"{achieved:.3g} of {g.name}'s {peak:g} TFLOPS")
    elif gname in ("cpu", "mps"):  # train.py's header names the device: no GPU peak applies
        f["mfu_real"] = unknown("%", f"trained on {gname}, which has no GPU peak")
    else:
        f["mfu_real"] = unknown("%", "pass --gpu, e.g. --gpu 'RTX 4070'" + (
            "; the logged mfu is relative to an A100's 312 TFLOPS, not this GPU" if ref == "a100" and steady else ""))


STALL_FACTOR = 3.0  # an iteration over 3x the median (outside evals) is a stall: data loading, swap, throttling


def _steady_mfu(s, normal, t_iter):
    """Steady MFU (percent, as logged) and how it was read.

    nanoGPT and llama2.c log a running estimate updated only at logged iterations (0.9 old + 0.1 new), so an eval
    iteration drags it down for many lines; m_new = 10 m_k - 9 m_(k-1) recovers each instantaneous value, and
    m_new x time is constant (flops per iteration), whose median over the run gives the steady value."""
    m = s.mfu
    ok = np.isfinite(m) & (m > 0)
    if not ok.any():
        return None, None
    if s.fmt in logfmt.EMA_MFU_FORMATS and t_iter:
        d = np.diff(s.it)
        step = np.median(d) if d.size else 0
        k = np.flatnonzero(ok[1:] & ok[:-1] & (d == step) & np.isfinite(s.time_ms[1:])) + 1
        if k.size >= 3:
            inst = 10 * m[k] - 9 * m[k - 1]
            work = inst * s.time_ms[k]
            work = work[work > 0]
            if work.size >= 3:
                v = float(np.median(work)) / t_iter
                return v, (f"steady value: nanoGPT's running mfu un-smoothed (10 m_k - 9 m_k-1) x iteration time, "
                           f"median over {work.size} lines, at the median {t_iter:.0f} ms")
    sel = ok & normal if (ok & normal).any() else ok
    return float(np.median(m[sel])), f"median over {int(sel.sum())} iterations"


_SIZE_RE = re.compile(r"(?<![\w.])~?(\d+(?:\.\d+)?)\s?([mb])(?![a-z])", re.I)
CLAIM_KEYS = ("wandb_run_name", "out_dir", "run_name", "name", "params", "model", "comment", "comments", "init")


def _claimed_size(config, run):
    """(params, 'log'|'config', text) of a size named in a run name, out_dir or comment ('~125M', 'gpt2-350m')."""
    texts = [(t, "log") for t in (getattr(run, "comments", None) or []) if isinstance(t, str)]
    texts += [(v, "config") for k, v in (config or {}).items() if k in CLAIM_KEYS and isinstance(v, str)]
    for k in CLAIM_KEYS:
        v = (getattr(run, "config", None) or {}).get(k)
        if isinstance(v, str):
            texts.append((v, "log"))
    for text, where in texts:
        m = _SIZE_RE.search(text)
        if m:
            return float(m.group(1)) * (1e6 if m.group(2).lower() == "m" else 1e9), where, text
    return None

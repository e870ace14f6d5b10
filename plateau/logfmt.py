"""The training log: the writer train.py uses and the parser diagnose.py uses, side by side.

Lines keep nanoGPT's prefixes so existing habits and scripts work, with our fields
appended as `name value` pairs, one event per line:

    config {"n_layer": 12, ...}                       resolved config, one JSON line
    info {"num_params": 40562688, ...}                 facts known at start (see train.py)
    number of parameters: 40.56M
    tokens per iteration will be: 524,288
    step 500: train loss 5.4354, val loss 5.5328, train se 0.0021, val se 0.0023, time 15250.12ms
    iter 600: loss 5.0956, time 3902.93ms, mfu 69.12%, lr 9.9e-04, gnorm 0.4210, tok/s 134330, scale 65536, skipped 0
    saving checkpoint to out-fineweb, time 812.40ms
    resume {"iter_num": 1000, "ckpt": "out/ckpt.pt"}

Eval lines are in eval mode (dropout off) over fixed batches; `time` on an eval line is the
eval pass alone and on a checkpoint line the save alone, so iter times exclude both.
The parser never raises: whatever it cannot read is counted as skipped.
"""

import ast
import json
import re
from dataclasses import dataclass, field

# ---------------------------------------------------------------- writer


def format_config(cfg):
    return "config " + json.dumps(cfg, sort_keys=True)


def format_info(info):
    return "info " + json.dumps(info, sort_keys=True)


def format_num_params(n):
    return f"number of parameters: {n / 1e6:.2f}M"


def format_tokens_per_iter(n):
    return f"tokens per iteration will be: {n:,}"


def format_eval(step, train_loss, val_loss, train_se=None, val_se=None, time_ms=None):
    s = f"step {step}: train loss {train_loss:.4f}, val loss {val_loss:.4f}"
    if train_se is not None:
        s += f", train se {train_se:.4g}, val se {val_se:.4g}"
    if time_ms is not None:
        s += f", time {time_ms:.2f}ms"
    return s


def format_iter(it, loss, time_ms, mfu=None, lr=None, gnorm=None, tok_s=None, scale=None, skipped=None):
    """`mfu` is a percentage of the real GPU's peak; None (unknown GPU, CPU) prints 'n/a'."""
    s = f"iter {it}: loss {loss:.4f}, time {time_ms:.2f}ms, mfu " + ("n/a" if mfu is None else f"{mfu:.2f}%")
    if lr is not None:
        s += f", lr {lr:.4e}"
    if gnorm is not None:
        s += f", gnorm {gnorm:.4f}"
    if tok_s is not None:
        s += f", tok/s {tok_s:.0f}"
    if scale is not None:
        s += f", scale {scale:g}, skipped {skipped or 0}"
    return s


def format_checkpoint(out_dir, time_ms):
    return f"saving checkpoint to {out_dir}, time {time_ms:.2f}ms"


def format_resume(iter_num, ckpt):
    return "resume " + json.dumps({"iter_num": iter_num, "ckpt": ckpt})


# ---------------------------------------------------------------- parser


@dataclass
class Eval:
    step: int
    train_loss: float | None
    val_loss: float | None
    train_se: float | None = None
    val_se: float | None = None
    time_ms: float | None = None
    line: int = 0


@dataclass
class Iter:
    iter: int
    loss: float
    time_ms: float | None = None
    mfu: float | None = None  # percent, as logged (stock nanoGPT: of an A100's 312 TFLOPS)
    lr: float | None = None
    gnorm: float | None = None
    tok_s: float | None = None
    scale: float | None = None
    skipped: int | None = None
    line: int = 0


@dataclass
class Run:
    evals: list = field(default_factory=list)
    iters: list = field(default_factory=list)
    config: dict = field(default_factory=dict)  # our header's config, or key = value echoes
    info: dict = field(default_factory=dict)  # our header's info, or 'number of parameters' etc.
    checkpoints: list = field(default_factory=list)  # (line, time_ms or None)
    resumes: list = field(default_factory=list)  # iter numbers resumed from
    first_line: int = 0

    def empty(self):
        return not self.evals and not self.iters


@dataclass
class Parsed:
    runs: list
    lines: int = 0
    used: int = 0
    skipped: int = 0
    formats: list = field(default_factory=list)


NUM = r"[-+]?(?:\d[\d,]*\.?\d*(?:[eE][-+]?\d+)?|\.\d+|nan|inf|-inf)"
_EVAL = re.compile(rf"\bstep (\d+): train loss ({NUM}), val loss ({NUM})(.*)", re.I)
_ITER = re.compile(rf"\biter (\d+): loss ({NUM})(.*)", re.I)
_FIELD = re.compile(rf"(train se|val se|time|mfu|lr|gnorm|tok/s|scale|skipped)\s+({NUM}|n/a)\s*(ms|%)?", re.I)
_PARAMS = re.compile(rf"number of parameters:\s*({NUM})\s*([KMB]?)", re.I)
_TPI = re.compile(r"tokens per iteration will be:\s*([\d,]+)", re.I)
_CKPT = re.compile(rf"saving checkpoint to (\S+?)(?:, time ({NUM})ms)?\s*$", re.I)
_JSON = re.compile(r"^(config|info|resume) (\{.*\})\s*$")
_ASSIGN = re.compile(r"^([A-Za-z_]\w*)\s*=\s*(.+?)\s*(?:#.*)?$")
_PREFIX = re.compile(r"^(?:\s*>)+\s?")  # markdown quotes of pasted logs


def num(text):
    """float of a logged number ('1,234', 'nan', '-inf'); None if it is not one."""
    try:
        return float(text.replace(",", ""))
    except (ValueError, AttributeError):
        return None


def _fields(rest):
    out = {}
    for name, value, _unit in _FIELD.findall(rest):
        out[name.lower()] = None if value == "n/a" else num(value)
    return out


def _literal(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text.strip("'\"")


class _State:
    """Accumulates runs; a step counter going back starts a new run (resume markers excepted)."""

    def __init__(self):
        self.runs = [Run()]
        self.formats = set()

    @property
    def run(self):
        return self.runs[-1]

    def new_run_if_back(self, n, line_no, kind):
        r = self.run
        last = (r.iters[-1].iter if r.iters else None) if kind == "iter" else (r.evals[-1].step if r.evals else None)
        if last is not None and n < last:
            self.runs.append(Run(first_line=line_no))

    def resume(self, it):
        r = self.run
        r.resumes.append(it)
        r.iters = [x for x in r.iters if x.iter < it]
        r.evals = [x for x in r.evals if x.step < it]


def clean(raw):
    """A pasted line without quote prefixes and surrounding white space."""
    return _PREFIX.sub("", raw).strip()


def parse_line(state, line, line_no):
    """Parse one cleaned, non-blank line into `state`; True if it was used."""
    m = _EVAL.search(line)
    if m:
        step = int(m.group(1))
        state.new_run_if_back(step, line_no, "eval")
        f = _fields(m.group(4))
        state.run.evals.append(Eval(step, num(m.group(2)), num(m.group(3)), f.get("train se"), f.get("val se"),
                                    f.get("time"), line_no))
        state.formats.add("plateau" if "train se" in f else "nanogpt")
        return True
    m = _ITER.search(line)
    if m:
        it = int(m.group(1))
        state.new_run_if_back(it, line_no, "iter")
        f = _fields(m.group(3))
        mfu = f.get("mfu")
        if mfu is not None and mfu <= -100:  # nanoGPT's "not measured yet" sentinel
            mfu = None
        skipped = f.get("skipped")
        state.run.iters.append(Iter(it, num(m.group(2)), f.get("time"), mfu, f.get("lr"), f.get("gnorm"),
                                    f.get("tok/s"), f.get("scale"), None if skipped is None else int(skipped),
                                    line_no))
        if "gnorm" in f or "tok/s" in f:
            state.formats.add("plateau")
        else:
            state.formats.add("nanogpt" if "mfu" in f else "nanogpt-old")
        return True
    m = _JSON.match(line)
    if m:
        try:
            obj = json.loads(m.group(2))
        except ValueError:
            return False
        kind = m.group(1)
        if kind == "config":
            if not state.run.empty():
                state.runs.append(Run(first_line=line_no))
            state.run.config.update(obj)
        elif kind == "info":
            state.run.info.update(obj)
        elif isinstance(obj.get("iter_num"), int):
            state.resume(obj["iter_num"])
        state.formats.add("plateau")
        return True
    m = _PARAMS.search(line)
    if m and num(m.group(1)) is not None:
        mult = {"": 1, "K": 1e3, "M": 1e6, "B": 1e9}[m.group(2).upper()]
        state.run.info.setdefault("num_params", round(num(m.group(1)) * mult))
        return True
    m = _TPI.search(line)
    if m:
        state.run.info.setdefault("tokens_per_iter", int(num(m.group(1))))
        return True
    m = _CKPT.search(line)
    if m:
        state.run.checkpoints.append((line_no, num(m.group(2)) if m.group(2) else None))
        return True
    m = _ASSIGN.match(line)
    if m:
        state.run.config.setdefault(m.group(1), _literal(m.group(2)))
        return True
    return False


def parse(lines):
    """Parse an iterable of log lines. Never raises; returns Parsed with every run (last is current)."""
    state = _State()
    n = used = blank = 0
    for n, raw in enumerate(lines, 1):
        line = clean(raw)
        if not line:
            blank += 1  # neither used nor skipped
        elif parse_line(state, line, n):
            used += 1
    runs = [r for r in state.runs if not r.empty()] or [state.runs[-1]]
    return Parsed(runs, lines=n, used=used, skipped=n - used - blank, formats=sorted(state.formats))


def parse_file(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return parse(f)

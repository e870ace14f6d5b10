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
The parser never raises: whatever it cannot read is counted as skipped. It also reads what other
trainers print, pasted with markdown quotes, timestamps and colour codes (Parsed.formats names them):

    nanogpt        step 500: train loss 5.4354, val loss 5.5328 / iter 600: loss 5.0956, time 3902.93ms, mfu 12.87%
    nanogpt-old    iter 600: loss 5.0956, time 3902.93ms                      (before nanoGPT logged mfu)
    build-nanogpt  step   600 | loss: 5.095612 | lr 5.9e-04 | norm: 0.4210 | dt: 390.29ms | tok/sec: 1343300.12
                   validation loss: 5.5328 / HellaSwag accuracy: 2487/10042=0.2477 / log.txt: 600 train 5.095612
    llmc           step  601/18865 | loss 5.095612 (+0.12z)| norm 0.4210 (-0.50z)| lr 5.9e-04 | 390.29 ms | ...
                   val loss 5.532800 / HellaSwag: 2487/10042 = 0.247660 / main.log: s:600 trl:5.0956 lr:...
    llama2c        600 | loss 5.0956 | lr 5.900000e-04 | 390.29ms | mfu 12.87%   (evals as nanoGPT's)
    litgpt         iter 2400 step 600: loss 5.0956, iter time: 390.29ms (optimizer.step)
                   iter 2400: val loss 5.5328, val time: 1523.10ms             (and 'Epoch 1 | iter ...')
"""

import ast
import io
import json
import math
import re
import tokenize
import warnings
from collections import Counter
from dataclasses import dataclass, field

from plateau.config import FIELDS

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
    step: int  # optimizer steps done when the eval ran (nanoGPT's `step N`)
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
    mfu: float | None = None  # percent, as logged; what of: Run.mfu_ref
    lr: float | None = None
    gnorm: float | None = None
    tok_s: float | None = None
    scale: float | None = None
    skipped: int | None = None
    line: int = 0


@dataclass
class Note:
    line: int
    kind: str  # 'elision', 'warning', 'traceback', 'error' or 'resume' (a counter went back inside a run)
    text: str


@dataclass
class Run:
    evals: list = field(default_factory=list)
    iters: list = field(default_factory=list)
    config: dict = field(default_factory=dict)  # our header's config, config echoes, known `key = value` lines
    info: dict = field(default_factory=dict)  # our header's info, or 'number of parameters' etc.
    checkpoints: list = field(default_factory=list)  # (line, time_ms or None)
    resumes: list = field(default_factory=list)  # iter numbers resumed from
    first_line: int = 0
    format: str | None = None  # the format most of this run's records are in (FORMATS)
    notes: list = field(default_factory=list)  # Note: what a reader of the paste should know
    hellaswag: list = field(default_factory=list)  # (step, accuracy) from build-nanogpt and llm.c
    comments: list = field(default_factory=list)  # the `# ...` texts of config echoes ('~125M params')
    mfu_ref: str | None = None  # what Iter.mfu is a percentage of: 'a100' (312 TFLOPS bf16), 'device', None
    # 'micro_batch': an iter loss is one micro-batch's (nanoGPT, llama2.c, lit-gpt 2023); 'batch': the mean over
    # all of the step's micro-batches (ours, build-nanogpt, llm.c, litgpt). Both are in train mode (dropout on).
    iter_loss_scope: str | None = None

    def empty(self):
        return not self.evals and not self.iters


@dataclass
class Parsed:
    runs: list  # every run in the file, oldest first; the last is the one to report
    lines: int = 0
    used: int = 0
    skipped: int = 0  # neither used nor blank
    formats: list = field(default_factory=list)


FORMATS = ("plateau", "nanogpt", "nanogpt-old", "build-nanogpt", "llmc", "llama2c", "litgpt")
# What each format's numbers mean, for facts.py: what its mfu is a percentage of; whether its iter loss is one
# micro-batch's or the mean over the step's micro-batches; which formats log nanoGPT's running MFU, an EMA
# (0.9 old + 0.1 new) updated only at logged iterations.
MFU_REF = {"nanogpt": "a100", "llama2c": "a100", "plateau": "device"}
LOSS_SCOPE = {"nanogpt": "micro_batch", "nanogpt-old": "micro_batch", "llama2c": "micro_batch",
              "build-nanogpt": "batch", "llmc": "batch", "plateau": "batch"}
EMA_MFU_FORMATS = ("nanogpt", "llama2c")

# No two quantifiers below can share the same characters (`\s*(?::\s*)?`, never `\s*:?\s*`), so a failed match
# on a 100k-character junk line costs linear time; numbers searched for anywhere must not start inside a number.
NUM = r"[-+]?(?:\d+(?:,\d{3})*(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|nan|inf(?:inity)?)"
_N = rf"(?<![\d.,])({NUM})"
_I = re.I

# records; each line is tried against these in order
_ITER = re.compile(rf"iter\s*(\d+)\s*:\s*loss\s*({NUM})(.*)", _I)  # nanoGPT, ours, litgpt's speed test
_EVAL = re.compile(rf"step\s*(\d+)\s*:\s*train loss\s*({NUM})(?:\s*,\s*val loss\s*({NUM}))?(.*)", _I)
_LLMC = re.compile(rf"step\s*(\d+)\s*(?:/\s*\d+\s*)?[:|]\s*(?:train )?loss\s*({NUM})(.*)", _I)
_BUILD = re.compile(rf"step\s*(\d+)\s*[|,]\s*loss:\s*({NUM})(.*)", _I)  # ',': its forks' f-strings
_LITGPT = re.compile(rf"iter\s*(\d+)\s*(?:\|\s*)?step\s*\d+\s*(?:\]\s*)?[:|]\s*loss(?: train)?\s*(?::\s*)?({NUM})(.*)",
                     _I)
_LLAMA2C = re.compile(rf"(?<![\w.])(\d+)\s*\|\s*loss\s+({NUM})(.*)", _I)
_VAL = re.compile(rf"(?:iter|step)\s*(\d+)\s*:\s*val loss\s*({NUM})(.*)", _I)  # litgpt
_VAL_NOSTEP = re.compile(rf"(val loss|validation loss:)\s*({NUM})", _I)  # llm.c, build-nanogpt consoles
_LOGTXT = re.compile(rf"(\d+) (train|val|hella) ({NUM})(?![\w.])")  # build-nanogpt log.txt, whole line
_MAINLOG = re.compile(rf"(?<!\w)s:(\d+) (trl|tel|eval):({NUM})(.*)")  # llm.c main.log
_HELLA = re.compile(rf"HellaSwag(?: accuracy)?:\s*\d+\s*/\s*\d+\s*=\s*({NUM})", _I)

# fields after a record's numbers: `name value` (ours, nanoGPT, litgpt) or llm.c's and llama2.c's `value unit`
_FIELD = re.compile(rf"(train se|val se|iter time|val time|time|mfu|lr|gnorm|norm|tok/s|scale|skipped)\s*(?::\s*)?"
                    rf"({NUM}|n/a)")  # on lower-cased text: re.I makes it 2.5x slower
_ANNOTATIONS = ("  ", "\t", "<-", "←", " #", "//")  # no trainer puts these inside its records
_MS = re.compile(rf"{_N}\s*ms\b", _I)
_TOKS = re.compile(rf"{_N}\s*tok/s|tok(?:ens)?/sec:\s*{_N}", _I)
_MFU_PCT = re.compile(rf"{_N}\s*%[^|%]{{0,24}}?mfu", _I)  # llm.c: '41.2% bf16 MFU'

# header lines
_PARAMS = re.compile(rf"(?:number of parameters|num_parameters|total parameters|number of trainable parameters)"
                     rf"\s*(?:[:|]\s*)?({NUM})\s*([KMB]?)", _I)
_TPI = re.compile(r"(?:tokens per iteration will be|tokens per iteration|total desired batch size|total batch size"
                  r"|total_batch_size)\s*[:|=]\s*(\d[\d,]*)", _I)
_ACCUM = re.compile(r"=> (?:calculated gradient accumulation steps|setting grad_accum_steps)\s*[:=]\s*(\d+)")
_VOCAB = re.compile(r"(?:found vocab_size = |^vocab_size: )(\d+)")  # nanoGPT's meta.pkl; llm.c's train_gpt2.c
_LLMC_SHAPE = re.compile(r"(num_layers|num_heads|channels): (\d+)")  # train_gpt2.c's model header
# build-nanogpt's DataLoaderLite (the lecture's train_gpt2.py): the dataset's size and the iterations in an epoch
_LOADED = re.compile(r"loaded (\d+) tokens")
_EPOCH = re.compile(r"1 epoch = (\d+) batches")
_CKPT = re.compile(r"(?:saving|writing) checkpoint\b", _I)
_CKPT_TIME = re.compile(rf"time\s*{_N}\s*ms", _I)
_NEW_RUN = ("Initializing a new model from scratch", "Initializing from OpenAI GPT-2 weights")
_ASSIGN = re.compile(r"([A-Za-z_]\w*)\s*=(?!=)\s*(.*)")
# llm.c: settings table rows (train_gpt2.cu) and model header keys (train_gpt2.c) -> our config key (or info key,
# for what is not a setting)
_LLMC_TABLE = {"micro batch size B": "batch_size", "sequence length T": "block_size",
               "learning rate (LR)": "learning_rate", "warmup iterations": "warmup_iters",
               "weight decay": "weight_decay", "max_steps": "max_iters", "val_loss_every": "eval_interval",
               "num_layers L": "n_layer", "num_heads NH": "n_head", "channels C": "n_embd",
               "num_layers": "n_layer", "num_heads": "n_head", "channels": "n_embd", "vocab_size V": "info:vocab_size",
               "device": "info:device_name", "peak TFlops": "info:peak_tflops"}
# `key = value` outside a config echo is config only for these: a warning's source line is not
KNOWN_KEYS = set(FIELDS) | {"dataset", "max_seq_len", "dim", "n_layers", "n_heads", "n_kv_heads", "multiple_of",
                            "vocab_source", "meta_vocab_size"}

# cleaning and notes
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_QUOTE = re.compile(r"(?:[ \t]*>)+")  # markdown quotes of pasted logs
_STAMP_FIRST = set("[0123456789")
_STAMP = re.compile(r"\[?(?:\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2}| UTC)?"
                    r"|\d{2}:\d{2}:\d{2}(?:[.,]\d+)?)\]?[\s|,:-]*")
_ELISION = re.compile(r"(?:[\s.\d\[\](){}<>#*_~…-]|snip(?:ped)?|omitted|elided|truncated|skipped|more|lines?)+", _I)
_ELISION_KEY = re.compile(r"\.\.|…|snip|omitted|elided|truncated|skipped", _I)
_WARNING = re.compile(r"\b\w*warning\b:", _I)
_CODE_WARNING = re.compile(r":\d+: \w*Warning:")  # warnings.warn output: the next line is the source line
_ERROR = re.compile(r"(?:[A-Za-z_][\w.]*(?:Error|Exception)|KeyboardInterrupt|SystemExit)\b|Killed\b"
                    r"|Segmentation fault")


def num(text):
    """float of a logged number ('1,234', 'nan', '-inf'); None if it is not one."""
    try:
        return float(text)
    except ValueError:
        try:
            return float(text.replace(",", ""))
        except ValueError:
            return None
    except TypeError:
        return None


def _int(text):
    """int of a digit string; None past Python's 4300-digit limit."""
    try:
        return int(text.replace(",", ""))
    except (ValueError, AttributeError):
        return None


def _whole(x):
    return int(x) if x is not None and math.isfinite(x) and x == int(x) else None


def _own(rest):
    """A record's fields without what someone appended to the pasted line ('  <-- spike here, lr too high')."""
    for mark in _ANNOTATIONS:  # str.find: 7x faster than one regex
        i = rest.find(mark)
        if i >= 0:
            rest = rest[:i]
    return rest


def _fields(rest):
    """{name: value} of the `name value` fields in `rest`, the first of each name; 'n/a' is None."""
    pairs = reversed(_FIELD.findall(rest.lower()))
    return {"time" if k == "iter time" else k: None if v == "n/a" else num(v) for k, v in pairs}


def _search(pattern, text):
    m = pattern.search(text)
    return num(next(g for g in m.groups() if g is not None)) if m else None


def _arith(node, env):
    """Value of a numeric expression such as `5 * 8` or `learning_rate / 10` (names from `env`)."""
    if isinstance(node, ast.Constant):
        v = node.value
    elif isinstance(node, ast.Name):
        v = env.get(node.id)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _arith(node.operand, env)
        v = -v if isinstance(node.op, ast.USub) else v
    elif isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        a, b = _arith(node.left, env), _arith(node.right, env)
        if isinstance(node.op, ast.Pow) and abs(b) > 64:
            raise ValueError("exponent too large")
        v = _OPS[type(node.op)](a, b)
    else:
        raise ValueError("not a numeric expression")
    if type(v) not in (int, float) or (type(v) is int and v.bit_length() > 256):  # no 10**10**10 in a paste
        raise ValueError("not a number of a config's size")
    return v


_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
        ast.Div: lambda a, b: a / b, ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b,
        ast.Pow: lambda a, b: a**b}


def _value(text, env=None):
    """A config value: a Python literal or constant arithmetic (comments allowed); None if neither."""
    if len(text) > 1000:  # deeply nested junk could exhaust the parser's stack
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes in pasted strings
            tree = ast.parse(text.strip(), mode="eval")
        try:
            return ast.literal_eval(tree)
        except ValueError:
            return _arith(tree.body, env or {})
    except (ValueError, SyntaxError, TypeError, ArithmeticError, MemoryError, RecursionError):
        return None


class _State:
    """Accumulates runs. A new run starts at a header after records, or when a step counter goes back to or
    below where the run began; going back to within the run is a resume (records from there are replaced)."""

    def __init__(self):
        self.runs = [Run()]
        self.tags = [Counter()]  # per run: how many records of each format
        self.echo = False  # inside an 'Overriding config with' echo
        self.code_next = False  # the next line is source code: a warning's, or a traceback frame's
        self.in_header = False  # header lines belong to the current run (set after a resume)
        self.pending_resume = False  # nanoGPT's 'Resuming training': the next record says from where
        self.zero_based = True  # the last console iter line counted steps from 0 (llm.c's 'step N/M' from 1)

    @property
    def run(self):
        return self.runs[-1]

    def new_run(self, line_no):
        self.runs.append(Run(first_line=line_no))
        self.tags.append(Counter())

    def header(self, line_no):
        """A line that opens a run's log: after records, it starts a new run."""
        if not self.run.empty() and not self.in_header:
            self.new_run(line_no)
        self.in_header = True

    def resume_marker(self):
        """The process restarted from a checkpoint: a header it printed since is still the resumed run's."""
        if self.run.empty() and len(self.runs) > 1:
            fresh, tags = self.runs.pop(), self.tags.pop()
            r = self.run
            r.config.update(fresh.config)
            r.info.update(fresh.info)
            r.notes += fresh.notes
            r.comments += fresh.comments
            r.checkpoints += fresh.checkpoints
            self.tags[-1].update(tags)
        self.in_header = True

    def resume(self, it, line_no, implicit=False):
        r = self.run
        r.resumes.append(it)
        r.iters = [x for x in r.iters if x.iter < it]
        r.evals = [x for x in r.evals if x.step < it]
        r.hellaswag = [x for x in r.hellaswag if x[0] < it]
        if implicit:
            r.notes.append(Note(line_no, "resume", f"step counter went back to {it}: later records replaced"))

    def place(self, n, kind, line_no):
        """Before adding record `n` of `kind` ('iter' or 'eval'): new run, resume, or neither."""
        self.in_header = False
        if self.pending_resume:
            self.pending_resume = False
            self.resume(n, line_no)
            return
        recs = self.run.iters if kind == "iter" else self.run.evals
        if not recs:
            return
        first, last = (recs[0].iter, recs[-1].iter) if kind == "iter" else (recs[0].step, recs[-1].step)
        if n <= first:
            self.new_run(line_no)
        elif n <= last:
            self.resume(n, line_no, implicit=True)

    def add_iter(self, fmt, it, loss, line_no, f, time_ms=None, tok_s=None, mfu=None):
        """Add an iter from `f` (_fields) and what the caller found in other ways; False if `it` is None."""
        if it is None:
            return False
        self.place(it, "iter", line_no)
        g = f.get
        mfu = g("mfu") if mfu is None else mfu
        if mfu is not None and mfu <= -100:  # nanoGPT's and llm.c's "not measured yet" sentinel
            mfu = None
        self.run.iters.append(Iter(it, num(loss), g("time") if time_ms is None else time_ms, mfu, g("lr"),
                                   g("gnorm", g("norm")), g("tok/s") if tok_s is None else tok_s, g("scale"),
                                   _whole(g("skipped")), line_no))
        if fmt:
            self.tags[-1][fmt] += 1
        return True

    def add_eval(self, fmt, step, train, val, line_no, f=None):
        if step is None:
            return False
        self.place(step, "eval", line_no)
        f = f or {}
        self.run.evals.append(Eval(step, train, val, f.get("train se"), f.get("val se"),
                                   f.get("time", f.get("val time")), line_no))
        self.tags[-1][fmt] += 1
        return True

    def steps_done(self):
        """Step of an eval line that prints none: optimizer steps done, from the last iter line before it."""
        return self.run.iters[-1].iter + self.zero_based if self.run.iters else 0

    def note(self, line_no, kind, text):
        self.run.notes.append(Note(line_no, kind, text[:200]))


def clean(raw):
    """A pasted line without colour codes, quote prefixes, leading timestamps and surrounding white space."""
    s = raw.strip()
    if "\x1b" in s:
        s = _ANSI.sub("", s).strip()
    if s.startswith(">"):
        s = _QUOTE.sub("", s, count=1).strip()
    for _ in range(2):  # '[2023-03-22] [09:30:39] ...'
        m = s[:1] in _STAMP_FIRST and _STAMP.match(s)
        if not m or not m.end():
            break
        s = s[m.end():]
    return s


def _record(state, line, low, n):
    """Parse a loss record (any format) from `line`; True if it was one."""
    m = "iter" in low and _ITER.search(line)
    if m:
        f = _fields(_own(m.group(3)))
        fmt = ("litgpt" if "iter time" in low else
               "plateau" if f.keys() & {"gnorm", "tok/s", "scale"} or ("mfu" in f and f["mfu"] is None) else
               "nanogpt" if "mfu" in f else "nanogpt-old" if "time" in f else None)  # None: truncated line
        return state.add_iter(fmt, _int(m.group(1)), m.group(2), n, f)
    m = "iter" in low and _LITGPT.search(line)
    if m:
        rest = _own(m.group(3))
        # litgpt's 'loss train:' is the mean over the step's micro-batches; older lit-gpt printed one micro-batch's
        state.run.iter_loss_scope = "batch" if "loss train" in low else "micro_batch"
        return state.add_iter("litgpt", _int(m.group(1)), m.group(2), n, _fields(rest), time_ms=_search(_MS, rest))
    if "step" in low:
        ev = _EVAL.search(line)
        if ev and ev.group(3) is not None:
            f = _fields(_own(ev.group(4)))
            return state.add_eval("plateau" if "train se" in f else "nanogpt-eval", _int(ev.group(1)),
                                  num(ev.group(2)), num(ev.group(3)), n, f)
        m = _BUILD.search(line)
        if m:
            rest, state.zero_based = _own(m.group(3)), True
            return state.add_iter("build-nanogpt", _int(m.group(1)), m.group(2), n, _fields(rest),
                                  time_ms=_search(_MS, rest), tok_s=_search(_TOKS, rest))
        m = _LLMC.search(line) if "(took" in low or "/" in low else None
        if m:
            rest = _own(m.group(3))
            f = _fields(rest)
            state.zero_based = "(took" in low  # train_gpt2.c counts from 0, train_gpt2.cu prints step + 1
            if "mfu" in low:  # 'A100 fp16 MFU' (mid-2024) or of the GPU it ran on ('bf16 MFU', 'MFU 41.20%')
                state.run.mfu_ref = "a100" if "a100" in low else "device"
            return state.add_iter("llmc", _int(m.group(1)), m.group(2), n, f, time_ms=_search(_MS, rest),
                                  tok_s=_search(_TOKS, rest), mfu=_search(_MFU_PCT, rest))
        if ev:  # a truncated eval line: train loss only
            return state.add_eval("nanogpt-eval", _int(ev.group(1)), num(ev.group(2)), None, n)
    if "val" in low:
        m = _VAL.search(line)
        if m:
            return state.add_eval("litgpt", _int(m.group(1)), None, num(m.group(2)), n, _fields(_own(m.group(3))))
        m = _VAL_NOSTEP.match(line)
        if m:
            fmt = "llmc" if m.group(1).lower() == "val loss" else "build-nanogpt"
            return state.add_eval(fmt, state.steps_done(), None, num(m.group(2)), n)
    if "| loss" in low:
        m = _LLAMA2C.search(line)
        if m:
            rest = _own(m.group(3))
            return state.add_iter("llama2c", _int(m.group(1)), m.group(2), n, _fields(rest),
                                  time_ms=_search(_MS, rest))
    return False


def _foreign_file_record(state, line, low, n):
    """build-nanogpt's log.txt and llm.c's main.log lines, and HellaSwag results."""
    m = _LOGTXT.match(line)
    if m:
        step, kind, value = _int(m.group(1)), m.group(2), num(m.group(3))
        if kind == "train":
            return state.add_iter("build-nanogpt", step, m.group(3), n, {})
        if kind == "val":
            return state.add_eval("build-nanogpt", step, None, value, n)
        if step is not None:
            state.run.hellaswag.append((step, value))
            return True
        return False
    m = "s:" in line and _MAINLOG.search(line)
    if m:
        step, kind, value = _int(m.group(1)), m.group(2), m.group(3)
        if kind == "trl":
            return state.add_iter("llmc", step, value, n, _fields(_own(m.group(4))))
        if kind == "tel":
            return state.add_eval("llmc", step, None, num(value), n)
        if step is not None:
            state.run.hellaswag.append((step, num(value)))
            return True
        return False
    m = "hellaswag" in low and _HELLA.search(line)
    if m:
        state.run.hellaswag.append((state.steps_done(), num(m.group(1))))
        return True
    return False


def _typed(key, value):
    """`value` as config[key] holds it: a key of ours keeps its type (an int may widen to float), else None."""
    want = FIELDS[key].type if key in FIELDS else None
    if want is None or type(value) is want:
        return value
    return float(value) if want is float and type(value) is int else None


def _comment(line):
    """The text of the `# comment` ending a line of Python (a '#' inside a string is not one), or None."""
    if "#" not in line or len(line) > 1000:
        return None
    try:
        for tok in tokenize.generate_tokens(io.StringIO(line).readline):
            if tok.type == tokenize.COMMENT:
                return tok.string.lstrip("#").strip()
    except (tokenize.TokenError, SyntaxError, ValueError):
        pass
    return None


def _config_line(state, line, known_only):
    """A `key = value` line; in an echo any key, else only known training keys. True if it was one."""
    m = _ASSIGN.fullmatch(line)
    if not m or (known_only and m.group(1) not in KNOWN_KEYS):
        return False
    comment = _comment(line)
    if comment:
        state.run.comments.append(comment)
    value = _typed(m.group(1), _value(m.group(2), state.run.config))
    if value is None:
        return not known_only  # an echo line we cannot evaluate (`'run' + str(time.time())`) is still the echo's
    state.run.config[m.group(1)] = value
    return True


def _header(state, line, n):
    """Header and bookkeeping lines: our JSON lines, config echoes, parameter and token counts, checkpoints."""
    if line.startswith(("config {", "info {", "resume {")) and line.endswith("}"):
        kind, _, text = line.partition(" ")
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError):
            return False
        if kind == "config":
            state.header(n)
            state.run.config.update(obj)
        elif kind == "info":
            state.run.info.update(obj)
        else:
            it = obj.get("iter_num")
            if type(it) is not int:
                return False
            state.resume_marker()
            state.resume(it, n)
        state.tags[-1]["plateau-header"] += 1
        return True
    if line.startswith("Overriding config with"):
        state.header(n)
        state.echo = True
        return True
    if line.startswith("Overriding:"):
        state.header(n)
        m = _ASSIGN.fullmatch(line[len("Overriding:"):].strip())
        if not m:
            return False
        key, text = m.group(1), m.group(2).strip()
        value = _value(text, state.run.config)
        value = _typed(key, text if value is None and len(text) <= 200 else value)  # nanoGPT prints strings bare
        if value is not None:
            state.run.config[key] = value
        return True
    if line.startswith(_NEW_RUN):
        state.header(n)
        return True
    if line.startswith("Resuming training"):
        state.resume_marker()
        state.pending_resume = True
        return True
    m = _PARAMS.search(line)
    if m:
        value = num(m.group(1))
        if value is None or not math.isfinite(value):
            return False
        state.header(n)
        scale = {"": 1, "K": 1e3, "M": 1e6, "B": 1e9}[m.group(2).upper()]
        state.run.info.setdefault("num_params", round(value * scale))
        return True
    m = _TPI.search(line)
    if m and _int(m.group(1)) is not None:
        state.header(n)
        state.run.info.setdefault("tokens_per_iter", _int(m.group(1)))
        return True
    m = _ACCUM.search(line) or _VOCAB.search(line)
    if m and _int(m.group(1)) is not None:
        state.header(n)
        key = "vocab_size" if m.re is _VOCAB else "gradient_accumulation_steps"
        (state.run.info if key == "vocab_size" else state.run.config).setdefault(key, _int(m.group(1)))
        return True
    m = _LOADED.fullmatch(line) or _EPOCH.fullmatch(line)
    if m:
        state.header(n)
        state.run.info.setdefault("train_tokens" if m.re is _LOADED else "epoch_iters", int(m.group(1)))
        return True
    m = _LLMC_SHAPE.fullmatch(line)
    if m:
        state.header(n)
        state.run.config.setdefault(_LLMC_TABLE[m.group(1)], int(m.group(2)))
        return True
    if _CKPT.search(line):
        state.run.checkpoints.append((n, _search(_CKPT_TIME, line)))
        return True
    if line.startswith("|") and line.endswith("|") and line.count("|") == 3:  # llm.c's settings table
        _, key, text, _ = (s.strip() for s in line.split("|"))
        name = _LLMC_TABLE.get(key, "")
        value = text if name == "info:device_name" else _value(text) if name else None
        if value is not None:
            state.header(n)
            where, _, name = name.rpartition(":")
            (state.run.info if where else state.run.config).setdefault(name, value)
            return True
    return False


def _notes(state, line, n):
    """Record elisions, warnings, tracebacks and errors as notes on the current run (never 'used')."""
    if len(line) <= 80 and _ELISION.fullmatch(line) and _ELISION_KEY.search(line):
        state.note(n, "elision", line)
    elif line.startswith("Traceback (most recent call last)"):
        state.note(n, "traceback", line)
    elif line.startswith('File "'):  # a traceback frame: its source line follows
        state.code_next = True
    elif _WARNING.search(line):
        state.note(n, "warning", line)
        state.code_next = bool(_CODE_WARNING.search(line))
    elif _ERROR.match(line):
        state.note(n, "error", line)


def parse_line(state, line, line_no):
    """Parse one cleaned, non-blank line into `state`; True if it was used."""
    low = line.lower()
    code, state.code_next = state.code_next, False
    if "loss" in low and _record(state, line, low, line_no):
        return True
    if _foreign_file_record(state, line, low, line_no):
        return True
    if code:  # a warning's source line or a traceback frame's: never config
        return False
    if state.echo:
        if line.startswith("#"):
            state.run.comments.append(line.lstrip("#").strip())
            return True
        if line.startswith(("import ", "from ")) or _config_line(state, line, known_only=False):
            return True
        state.echo = False
    if _header(state, line, line_no) or _config_line(state, line, known_only=True):
        return True
    _notes(state, line, line_no)
    return False


def _finish(state):
    """Each run's format, MFU reference and loss scope. Runs without records are dropped, their notes kept."""
    runs, formats, orphans = [], set(), []
    for r, tags in zip(state.runs, state.tags, strict=True):
        if r.empty() and (runs or r is not state.run):
            (runs[-1].notes if runs else orphans).extend(r.notes)
            continue
        r.notes[:0], orphans = orphans, []
        # nanoGPT's eval lines are llama2.c's and ours too, and its iter lines without mfu may be a cut line:
        # they take the format of the run's other lines
        plateau = tags.pop("plateau-header", 0) or "plateau" in tags
        evals = tags.pop("nanogpt-eval", 0)
        target = ("plateau" if plateau else "llama2c" if "llama2c" in tags else
                  max(("nanogpt", "nanogpt-old"), key=lambda k: tags[k]))
        for name in {"nanogpt", "nanogpt-old"} - {target}:
            tags[target] += tags.pop(name, 0)
        tags[target] += evals
        tags = +tags  # drops a target that got nothing
        r.format = tags.most_common(1)[0][0] if tags else "plateau" if plateau else None
        formats.update(tags)
        r.mfu_ref = r.mfu_ref or MFU_REF.get(r.format)
        r.iter_loss_scope = r.iter_loss_scope or LOSS_SCOPE.get(r.format)
        runs.append(r)
    return runs, sorted(formats)


def parse(lines):
    """Parse log lines (an iterable of str or bytes, or one str). Never raises; every run, last is current."""
    if isinstance(lines, (str, bytes)):
        lines = lines.splitlines()
    state = _State()
    n = used = blank = 0
    for n, raw in enumerate(lines, 1):
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", errors="replace")
        line = clean(raw)
        if not line:
            blank += 1  # neither used nor skipped
        elif parse_line(state, line, n):
            used += 1
    runs, formats = _finish(state)
    return Parsed(runs, lines=n, used=used, skipped=n - used - blank, formats=formats)


def parse_file(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return parse(f)

"""The training config: one frozen dataclass of defaults, and the configurator.

    python train.py config/fineweb_4070.py --batch_size=12 --compile=False

Arguments are applied left to right, as in nanoGPT: a config file is executed
in a fresh namespace and its assignments override the defaults; `--key=value`
is parsed with ast.literal_eval (a bare word stays a string). Unlike nanoGPT,
an unknown key, a value of the wrong type or a broken invariant is a one-line
UsageError, and scripts receive the frozen Config, never sys.argv.
"""

import ast
import dataclasses
import difflib
import os
from dataclasses import dataclass, field

from plateau.cli import UsageError


def _f(default, help):
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Config:
    # I/O
    out_dir: str = _f("out", "directory for log.txt and ckpt.pt")
    data_dir: str = _f("data/sample", "directory holding prepare.py's train.bin, val.bin, meta.json")
    eval_interval: int = _f(2000, "iterations between evals (and checkpoints)")
    eval_iters: int = _f(200, "micro-batches per split per eval; the standard error shrinks as 1/sqrt(this)")
    log_interval: int = _f(1, "iterations between iter lines")
    eval_only: bool = _f(False, "run one eval and exit")
    always_save_checkpoint: bool = _f(True, "save at every eval, not only when val improves")
    init_from: str = _f("scratch", "'scratch' or 'resume' (from out_dir/ckpt.pt)")
    force: bool = _f(False, "let init_from='scratch' replace the checkpoint an earlier run left in out_dir")
    # logging
    wandb_log: bool = _f(False, "also log metrics to Weights & Biases")
    wandb_project: str = _f("plateau", "wandb project name")
    wandb_run_name: str = _f("run", "wandb run name")
    live_diagnose: bool = _f(True, "run diagnose's detectors at every eval and print new warnings")
    # data: tokens per iteration = batch_size * block_size * gradient_accumulation_steps * world size
    gradient_accumulation_steps: int = _f(40, "micro-steps per optimizer step, summed over all processes")
    batch_size: int = _f(12, "sequences per micro-batch (per process)")
    block_size: int = _f(1024, "context length, tokens")
    # model
    n_layer: int = _f(12, "transformer blocks")
    n_head: int = _f(12, "attention heads per block")
    n_embd: int = _f(768, "embedding width; must divide by n_head")
    vocab_size: int = _f(50304, "GPT-2's 50257 padded up to a multiple of 64 for faster matmuls")
    dropout: float = _f(0.0, "dropout probability; 0 for pretraining, try 0.1+ for finetuning")
    bias: bool = _f(False, "bias in Linear and LayerNorm layers (GPT-2 had them; without is a bit better and faster)")
    loss_chunk_tokens: int = _f(1024, "tokens per chunk of the fused lm_head + cross-entropy, which never holds "
                                      "the full (batch, block, vocab) logits; 0 computes them whole like nanoGPT")
    # AdamW
    learning_rate: float = _f(6e-4, "peak learning rate")
    max_iters: int = _f(600000, "total optimizer steps")
    weight_decay: float = _f(1e-1, "AdamW weight decay on 2-D weights")
    beta1: float = _f(0.9, "AdamW beta1")
    beta2: float = _f(0.95, "AdamW beta2")
    grad_clip: float = _f(1.0, "clip the global gradient norm to this; 0 disables")
    # learning-rate schedule
    decay_lr: bool = _f(True, "False keeps learning_rate constant (same as lr_schedule='constant')")
    lr_schedule: str = _f("cosine", "'cosine' (warmup, cosine to min_lr), 'constant' (warmup, flat) or 'wsd'")
    warmup_iters: int = _f(2000, "linear warmup steps")
    lr_decay_iters: int = _f(600000, "cosine: step where the LR reaches min_lr; usually max_iters")
    min_lr: float = _f(6e-5, "floor of the schedule, usually learning_rate/10")
    wsd_decay_frac: float = _f(0.2, "wsd: fraction of max_iters spent decaying linearly to min_lr at the end")
    # system
    backend: str = _f("nccl", "DDP backend under torchrun: 'nccl' (GPU) or 'gloo' (CPU)")
    device: str = _f("cuda", "'cpu', 'cuda', 'cuda:1', 'mps'")
    dtype: str = _f("auto", "'float32', 'bfloat16', 'float16' (with GradScaler) or 'auto' (bf16 if supported)")
    compile: bool = _f(True, "torch.compile the model")
    seed: int = _f(1337, "seed for init, data sampling and dropout")
    peak_tflops: float = _f(0.0, "MFU reference in TFLOPS; 0 looks up the GPU in plateau/gpus.py")
    nan_patience: int = _f(5, "stop after this many non-finite losses in a row")


FIELDS = {f.name: f for f in dataclasses.fields(Config)}
CHOICES = {
    "init_from": ("scratch", "resume"),
    "lr_schedule": ("cosine", "constant", "wsd"),
    "dtype": ("auto", "float32", "bfloat16", "float16"),
    "backend": ("nccl", "gloo"),
}
# Names other trainers use for our keys, so a habit gets a precise hint.
ALIASES = {
    "lr": "learning_rate", "max_lr": "learning_rate", "micro_batch_size": "batch_size",
    "grad_accum": "gradient_accumulation_steps", "grad_accum_steps": "gradient_accumulation_steps",
    "seq_len": "block_size", "context_length": "block_size", "n_heads": "n_head", "n_layers": "n_layer",
    "d_model": "n_embd", "warmup_steps": "warmup_iters", "max_steps": "max_iters", "wd": "weight_decay",
    "dataset": "data_dir",
}


def suggest(key):
    """The valid key a user most likely meant by `key`, or None."""
    if key in ALIASES:
        return ALIASES[key]
    close = difflib.get_close_matches(key, FIELDS, n=1, cutoff=0.6)
    return close[0] if close else None


def _unknown(key, where):
    hint = suggest(key)
    return UsageError(f"unknown key '{key}'{where}" + (f" (did you mean {hint}?)" if hint else ""))


def coerce(key, value, where=""):
    """Check `value` against the field's type; int may widen to float, nothing else changes type."""
    if key not in FIELDS:
        raise _unknown(key, where)
    want = FIELDS[key].type
    if want is float and type(value) is int:
        value = float(value)
    if type(value) is not want:
        raise UsageError(f"{key}{where} must be {want.__name__}, got {type(value).__name__} {value!r}")
    return value


def read_file(path):
    """Run a config file in a fresh namespace; return its assignments (keys unchecked)."""
    try:
        with open(path, encoding="utf-8") as f:
            src = f.read()
    except OSError as e:
        raise UsageError(f"cannot read config file {path}: {e.strerror}") from None
    ns = {}
    try:
        exec(compile(src, path, "exec"), ns)
    except Exception as e:  # the user's file: any error in it is their input, reported in one line
        raise UsageError(f"config file {path} failed: {type(e).__name__}: {e}") from None
    return {k: v for k, v in ns.items() if not k.startswith("_") and not callable(v)
            and type(v).__name__ != "module"}


def parse_value(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def load(argv, base=None):
    """Config from defaults (or `base`), then each argv item: a config file or --key=value."""
    values = dataclasses.asdict(base) if base is not None else {}
    for arg in argv:
        if arg.startswith("--"):
            key, eq, text = arg[2:].partition("=")
            if not eq:
                raise UsageError(f"expected --key=value, got '{arg}'")
            values[key] = coerce(key, parse_value(text), " (command line)")
        elif os.path.isfile(arg) or arg.endswith(".py"):
            for key, value in read_file(arg).items():
                values[key] = coerce(key, value, f" in {arg}")
        else:
            raise UsageError(f"'{arg}' is neither a config file nor --key=value")
    return validate(Config(**values))


def from_dict(d, where=""):
    """Config from a saved dict (checkpoint, log header); unknown keys are errors."""
    return validate(Config(**{k: coerce(k, v, where) for k, v in d.items()}))


def validate(c):
    for key, allowed in CHOICES.items():
        if getattr(c, key) not in allowed:
            raise UsageError(f"{key} must be one of {', '.join(allowed)}, got '{getattr(c, key)}'")
    positive = ("eval_interval", "eval_iters", "log_interval", "gradient_accumulation_steps", "batch_size",
                "block_size", "n_layer", "n_head", "n_embd", "vocab_size", "max_iters", "nan_patience")
    for key in positive:
        if getattr(c, key) <= 0:
            raise UsageError(f"{key} must be positive, got {getattr(c, key)}")
    if c.n_embd % c.n_head:
        raise UsageError(f"n_embd ({c.n_embd}) must be divisible by n_head ({c.n_head})")
    if c.loss_chunk_tokens < 0:
        raise UsageError(f"loss_chunk_tokens must be >= 0, got {c.loss_chunk_tokens}")
    if not 0.0 <= c.dropout < 1.0:
        raise UsageError(f"dropout must be in [0, 1), got {c.dropout}")
    if c.learning_rate <= 0 or c.min_lr < 0 or c.min_lr > c.learning_rate:
        raise UsageError(f"need 0 <= min_lr <= learning_rate, 0 < learning_rate; got {c.min_lr}, {c.learning_rate}")
    if c.warmup_iters < 0 or (c.lr_schedule == "cosine" and c.decay_lr and c.lr_decay_iters <= c.warmup_iters):
        raise UsageError(f"lr_decay_iters ({c.lr_decay_iters}) must exceed warmup_iters ({c.warmup_iters})")
    if not 0.0 < c.wsd_decay_frac <= 1.0:
        raise UsageError(f"wsd_decay_frac must be in (0, 1], got {c.wsd_decay_frac}")
    return c


def to_dict(c):
    return dataclasses.asdict(c)


def help_text():
    """Every key with its default and meaning, for train.py --help."""
    rows = [f"  --{name}={f.default!r}".ljust(40) + f" {f.metadata['help']}" for name, f in FIELDS.items()]
    return "\n".join(rows)

"""The GPT-2 model as nanoGPT has it, with a loss that never holds the full logits.

    python -c "from model import GPT, GPTConfig; print(GPT(GPTConfig(n_embd=384)).get_num_params())"
    python sample.py --out_dir=out-sample          # loads a checkpoint through load_checkpoint()

Pre-LayerNorm blocks, GELU MLP, token embedding tied to the output head, optional bias,
dropout, residual projections initialised with std 0.02/sqrt(2*n_layer) (GPT-2 paper),
attention through scaled_dot_product_attention (flash attention on CUDA).
Shapes: B batch, T time (block), C channels (n_embd), V vocab, H heads, Q = C/H.
"""

import dataclasses
import inspect
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F

from plateau.cli import UsageError, atomic_path


class LayerNorm(nn.Module):
    """LayerNorm with an optional bias (PyTorch's has no bias=False before 2.1)."""

    def __init__(self, ndim, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v for all heads
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head, self.n_embd, self.dropout = config.n_head, config.n_embd, config.dropout

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, H, T, Q)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


@dataclass
class GPTConfig:
    block_size: int = 1024
    vocab_size: int = 50304  # GPT-2's 50257 padded up to a multiple of 64 for efficiency
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True  # GPT-2 had biases; False is a bit better and faster
    loss_chunk_tokens: int = 1024  # see LinearCrossEntropy; 0 computes the full logits like nanoGPT


def torch_device(name, shown=None):
    """torch.device(name); a one-line UsageError if it is not a device or torch cannot use it here.
    `shown`: the name the user gave, when `name` was derived from it (train.py's cuda -> cuda:LOCAL_RANK)."""
    shown = shown or name
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"device '{shown}' is not a torch device (try cpu, cuda, cuda:1, mps)") from None
    available = {"cuda": torch.cuda.is_available, "mps": torch.backends.mps.is_available}.get(device.type)
    if available and not available():
        raise UsageError(f"device '{shown}' is not available to torch {torch.__version__}: use --device=cpu")
    return device


def model_args(cfg):
    """The GPTConfig fields of a run's config (plateau.config.Config names them alike)."""
    return {k: getattr(cfg, k) for k in GPTConfig.__dataclass_fields__}


class LinearCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of (x @ weight.T) against targets, chunk by chunk, ignoring target -1.

    Stock nanoGPT materialises (B*T, V) logits and, under autocast, an fp32 copy plus the
    log-softmax it saves for backward: ~10 bytes per logit, 8 GB at 16 x 1024 x 50304.
    Here only one chunk's (chunk, V) logits exist at a time, and the gradients of x and
    weight are computed in the same pass (as Liger-Kernel's fused linear cross-entropy does),
    so nothing is recomputed in backward: the saved state is grad_x (N, C) and grad_w (V, C).
    The per-chunk gradient (softmax - onehot) lies in [-1, 1], so under fp16 it is no
    smaller than the GradScaler-scaled gradient of the stock path and does not underflow;
    backward multiplies by grad_output, which carries the GradScaler's scale.
    """

    @staticmethod
    def forward(ctx, x, weight, targets, chunk):
        # x (N, C), weight (V, C), targets (N,)
        n = (targets != -1).sum().clamp(min=1)
        acc = torch.promote_types(weight.dtype, torch.float32)
        loss = torch.zeros((), device=x.device, dtype=acc)
        grad_x = torch.empty_like(x)
        grad_w = torch.zeros_like(weight, dtype=acc)
        for s in range(0, x.size(0), chunk):
            xc, tc = x[s:s + chunk], targets[s:s + chunk]
            logits = F.linear(xc, weight)  # (chunk, V); under autocast an fp16/bf16 matmul
            logp = F.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), dim=1)
            tgt = tc.clamp(min=0).unsqueeze(1)
            valid = (tc != -1).unsqueeze(1).to(x.dtype)  # (chunk, 1); ignored rows are masked on the C side
            loss -= (logp.gather(1, tgt) * valid).sum()
            g = logp.exp_()  # softmax, in place
            g.scatter_add_(1, tgt, -torch.ones_like(tgt, dtype=g.dtype))  # minus one-hot
            grad_x[s:s + chunk] = (g @ weight) * valid  # (chunk, C)
            grad_w += g.t() @ (xc * valid)  # (V, C), summed in fp32 across chunks
        ctx.save_for_backward(grad_x / n, (grad_w / n).to(weight.dtype))
        return loss / n

    @staticmethod
    def backward(ctx, grad_out):
        grad_x, grad_w = ctx.saved_tensors
        return grad_x * grad_out, grad_w * grad_out, None, None


def chunked_cross_entropy(x, weight, targets, chunk):
    """LinearCrossEntropy's loss without gradients (eval): one (chunk, V) block of logits at a time."""
    total = torch.zeros((), device=x.device, dtype=torch.promote_types(x.dtype, torch.float32))
    for s in range(0, x.size(0), chunk):
        logits = F.linear(x[s:s + chunk], weight)  # (chunk, V)
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
        total += F.cross_entropy(logits, targets[s:s + chunk], ignore_index=-1, reduction="sum")
    return total / (targets != -1).sum().clamp(min=1)


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        assert config.vocab_size is not None and config.block_size is not None
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # weight tying (https://paperswithcode.com/method/weight-tying); counted once in get_num_params
        self.transformer.wte.weight = self.lm_head.weight
        self.apply(self._init_weights)
        for pn, p in self.named_parameters():
            if pn.endswith("c_proj.weight"):  # scaled init of residual projections, per GPT-2
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def get_num_params(self, non_embedding=True):
        """Parameters, position embeddings excluded by default as nanoGPT counts them.

        The token embedding is tied to lm_head, so it is counted once and stays in.
        """
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wpe.weight.numel()
        return n

    def flops_per_token(self):
        """Training FLOPs per token: 6N for the matmuls (fwd + bwd) plus 12*L*H*Q*T for attention.

        PaLM paper appendix B, as nanoGPT's estimate_mfu; N from get_num_params().
        """
        c = self.config
        return 6 * self.get_num_params() + 12 * c.n_layer * c.n_head * (c.n_embd // c.n_head) * c.block_size

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets=None):
        """(logits, loss). With targets: (None, mean loss) when chunked, so no logits outlive the call;
        without: the last position's logits (B, 1, V), all inference needs."""
        device = idx.device
        b, t = idx.size()
        assert t <= self.config.block_size, f"sequence of {t} tokens > block_size {self.config.block_size}"
        pos = torch.arange(0, t, dtype=torch.long, device=device)  # (T,)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))  # (B, T, C)
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        if targets is None:
            return self.lm_head(x[:, [-1], :]), None  # list index keeps the time dim
        chunk = self.config.loss_chunk_tokens
        if chunk <= 0:  # the stock path: full (B, T, V) logits
            logits = self.lm_head(x)
            return logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        x, w, targets = x.view(b * t, -1), self.lm_head.weight, targets.reshape(-1)
        if torch.is_grad_enabled() and (x.requires_grad or w.requires_grad):
            return None, LinearCrossEntropy.apply(x, w, targets, chunk)
        return None, chunked_cross_entropy(x, w, targets, chunk)

    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type):
        """AdamW; weight decay on 2-D tensors (matmuls, embeddings) only, not on biases and LayerNorms."""
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        fused = device_type == "cuda" and "fused" in inspect.signature(torch.optim.AdamW).parameters
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, fused=fused or None)

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, n_vocab=None, generator=None):
        """Extend idx (B, T) by max_new_tokens sampled tokens; the context is cropped to block_size.

        n_vocab: sample only ids below it (the tokenizer's 50257; the rest of vocab_size is padding).
        """
        for _ in range(max_new_tokens):
            idx_cond = idx if idx.size(1) <= self.config.block_size else idx[:, -self.config.block_size:]
            logits, _ = self(idx_cond)
            logits = logits[:, -1, :n_vocab] / temperature  # (B, V)
            if top_k is not None:
                v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                logits[logits < v[:, [-1]]] = -float("Inf")
            probs = F.softmax(logits.float(), dim=-1)
            idx = torch.cat((idx, torch.multinomial(probs, num_samples=1, generator=generator)), dim=1)
        return idx


# ---------------------------------------------------------------- checkpoints (train.py writes, sample.py reads)

# torch.compile and DDP wrap the model; nanoGPT saved those wrappers' prefixes into state dicts (#325).
WRAPPER_PREFIXES = ("_orig_mod.", "module.")


def save_checkpoint(path, model, **state):
    """torch.save {"model", "model_args", **state} atomically: a kill at any moment leaves the previous
    checkpoint or the new one, never a torn file. `model` is the unwrapped GPT, so its keys carry no
    _orig_mod. or module. prefixes (nanoGPT #325); states are tensors and plain types (weights_only loads)."""
    ckpt = {"model": model.state_dict(), "model_args": dataclasses.asdict(model.config), **state}
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


SHAPE_KEYS = ("n_layer", "n_head", "n_embd", "block_size", "bias", "vocab_size")  # fixed by the weights


def load_checkpoint(path, resume=False):
    """The checkpoint dict at `path`, tensors on CPU; one-line UsageError if it is missing or unreadable,
    or, with resume=True, lacks what training needs to continue.

    weights_only=True refuses pickled code; map_location='cpu' keeps a resume from holding a
    second copy of every tensor on the GPU while the model is built (nanoGPT #158).
    """
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UsageError(f"no checkpoint at {path}") from None
    except Exception as e:  # any failure to unpickle the user's file means the file is bad input
        raise UsageError(f"{path} is not a readable checkpoint ({type(e).__name__}: {str(e)[:120]})".replace(
            "\n", " ")) from None
    if not isinstance(ckpt, dict) or not {"model", "model_args"} <= set(ckpt):
        raise UsageError(f"{path} is not a train.py checkpoint (needs 'model' and 'model_args')")
    missing = [k for k in ("optimizer", "iter_num", "best_val_loss") if resume and k not in ckpt]
    if missing:
        raise UsageError(f"{path} lacks {', '.join(missing)}: it cannot be resumed")
    return ckpt


def model_from_checkpoint(ckpt, path, expect=None, **overrides):
    """A GPT with the checkpoint's weights, on CPU.

    expect: model args a resume asks for; the shape ones must match the checkpoint's, the others
    (dropout, loss_chunk_tokens) are taken from it, as are `overrides`.
    """
    known = GPTConfig.__dataclass_fields__
    args = {k: v for k, v in ckpt["model_args"].items() if k in known}
    if expect is not None:
        diff = [f"{k} {args.get(k)!r} (config: {expect[k]!r})" for k in SHAPE_KEYS if args.get(k) != expect[k]]
        if diff:
            raise UsageError(f"{path} holds a model with {', '.join(diff)}; resume with that run's config")
        overrides = {**expect, **overrides}
    model = GPT(GPTConfig(**{**args, **overrides}))
    state = {}
    for k, v in ckpt["model"].items():
        for prefix in WRAPPER_PREFIXES:
            k = k.removeprefix(prefix)
        state[k] = v
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise UsageError(f"{path}: weights do not fit model_args: {str(e).splitlines()[0][:160]}") from None
    return model

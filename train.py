"""Train a GPT on prepare.py's data, nanoGPT style, with a log that diagnose.py can read.

    python prepare.py --sample --out-dir data/sample && python train.py config/sample_cpu.py
    python train.py config/fineweb_4070.py                       # RTX 4070: GPT-2 small, fp16, compile
    python train.py config/fineweb_4070.py --init_from=resume    # continue exactly from the last checkpoint
    python train.py config/sample_cpu.py --lr_schedule='wsd' --max_iters=400 --force=True
    python -m torch.distributed.run --standalone --nproc_per_node=2 train.py config/sample_cpu.py --backend=gloo
    python train.py --help                                       # every key, its default and meaning

Arguments apply left to right: config files (plain assignments) and --key=value overrides.
Writes out_dir/log.txt (a header with the resolved config, then nanoGPT's `step`/`iter` lines
with more fields) and out_dir/ckpt.pt, atomically, with the optimizer, the GradScaler, every RNG
and the data sampler's state, so a resume continues bit-identically on CPU.
"""

import contextlib
import glob
import math
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

import plateau.cli
from model import GPT, GPTConfig, load_checkpoint, model_args, model_from_checkpoint, save_checkpoint, torch_device
from plateau import config as configurator
from plateau import gpus, logfmt
from plateau.cli import UsageError, check_writable_dir
from plateau.meta import open_split, read_meta

CKPT, LOG = "ckpt.pt", "log.txt"


def get_lr(cfg, it):
    """Learning rate at iteration `it`: linear warmup, then cosine to min_lr, constant, or warmup-stable-decay."""
    if it < cfg.warmup_iters:
        return cfg.learning_rate * (it + 1) / (cfg.warmup_iters + 1)
    if cfg.lr_schedule == "constant" or not cfg.decay_lr:
        return cfg.learning_rate
    if cfg.lr_schedule == "wsd":
        # flat at the peak, then linear to min_lr over the last wsd_decay_frac of max_iters (Hu et al. 2024,
        # MiniCPM): raising max_iters on a resume before the decay extends the run with no restart
        decay_start = cfg.max_iters * (1 - cfg.wsd_decay_frac)
        if it < decay_start:
            return cfg.learning_rate
        frac = min(1.0, (it - decay_start) / (cfg.max_iters - decay_start))
        return cfg.learning_rate + frac * (cfg.min_lr - cfg.learning_rate)
    if it > cfg.lr_decay_iters:
        return cfg.min_lr
    ratio = (it - cfg.warmup_iters) / (cfg.lr_decay_iters - cfg.warmup_iters)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (cfg.learning_rate - cfg.min_lr)


class Batches:
    """Micro-batches from the memmaps, opened once (nanoGPT re-opened them for every batch, #287).

    Training offsets come from a seeded torch.Generator whose state is checkpointed; eval uses one
    fixed set of eval_iters batches per split, so successive evals compare like with like.
    """

    def __init__(self, cfg, meta, device, rank):
        self.data = {s: open_split(cfg.data_dir, s, meta) for s in ("train", "val")}
        for s, d in self.data.items():
            if len(d) <= cfg.block_size:
                raise UsageError(f"{s} split of {cfg.data_dir} has {len(d)} tokens; "
                                 f"block_size {cfg.block_size} needs {cfg.block_size + 1}")
        self.B, self.T, self.device = cfg.batch_size, cfg.block_size, device
        self.gen = torch.Generator().manual_seed(cfg.seed + rank)
        self.pending = self.pending_state = None
        self.eval_ix = {s: torch.randint(len(self.data[s]) - self.T, (cfg.eval_iters, self.B),
                                         generator=torch.Generator().manual_seed(cfg.seed + k))
                        for k, s in enumerate(("train", "val"), start=1)}

    def _load(self, data, ix):
        buf = torch.from_numpy(np.stack([data[i:i + self.T + 1] for i in ix.tolist()]).astype(np.int64))  # (B, T+1)
        x, y = buf[:, :-1].contiguous(), buf[:, 1:].contiguous()
        if self.device.type == "cuda":  # pinned memory lets the copy run while the GPU computes
            return x.pin_memory().to(self.device, non_blocking=True), y.pin_memory().to(self.device, non_blocking=True)
        return x.to(self.device), y.to(self.device)

    def train(self):
        """The next training micro-batch; the one after it is drawn now so its copy overlaps compute."""
        if self.pending is None:
            self._draw()
        batch = self.pending
        self._draw()
        return batch

    def _draw(self):
        self.pending_state = self.gen.get_state()
        ix = torch.randint(len(self.data["train"]) - self.T, (self.B,), generator=self.gen)
        self.pending = self._load(self.data["train"], ix)

    def state(self):
        """Generator state that reproduces the next batch train() returns (the drawn-ahead one included)."""
        return self.pending_state if self.pending is not None else self.gen.get_state()

    def set_state(self, state):
        self.gen.set_state(state)
        self.pending = None

    def eval_batch(self, split, j):
        return self._load(self.data[split], self.eval_ix[split][j])


@torch.no_grad()
def evaluate(model, batches, cfg, ctx, rank, world):
    """{split: (mean loss, standard error)} over the fixed eval batches, in eval mode (dropout off).

    The standard error is std(per-batch losses) / sqrt(eval_iters); None for a single batch.
    Under DDP each process takes every world-th batch and the losses are summed across processes.
    """
    model.eval()
    out = {}
    for split in ("train", "val"):
        losses = torch.zeros(cfg.eval_iters, device=batches.device)
        for j in range(rank, cfg.eval_iters, world):
            x, y = batches.eval_batch(split, j)
            with ctx:
                losses[j] = model(x, y)[1]
        if world > 1:
            dist.all_reduce(losses)
        losses = losses.double().cpu()
        se = (losses.std() / math.sqrt(cfg.eval_iters)).item() if cfg.eval_iters > 1 else None
        out[split] = (losses.mean().item(), se)
    model.train()
    return out


def train_step(model, optimizer, scaler, batches, grad_accum, ctx, grad_clip, ddp):
    """One optimizer step over grad_accum micro-batches: (mean micro-batch loss, grad norm before clipping, skipped).

    Each micro-loss is divided by grad_accum so the summed gradients are those of the mean loss.
    The loss returned is the mean over all micro-steps (and processes), not one micro-batch
    times grad_accum as nanoGPT logged it (PR #207). The step is skipped, and reported so, when
    the GradScaler finds inf/NaN gradients (fp16) or when the loss or grad norm is not finite.
    """
    loss_sum = torch.zeros((), device=batches.device)
    for micro in range(grad_accum):
        x, y = batches.train()
        # DDP all-reduces gradients only on the last micro-step
        sync = model.no_sync() if ddp and micro < grad_accum - 1 else contextlib.nullcontext()
        with sync:
            with ctx:
                loss = model(x, y)[1]  # [1] drops any logits before the next forward (stock nanoGPT kept them)
            loss_sum += loss.detach()
            scaler.scale(loss / grad_accum).backward()
    loss_sum /= grad_accum
    if ddp:
        dist.all_reduce(loss_sum)  # gloo has no AVG
        loss_sum /= dist.get_world_size()
    scaler.unscale_(optimizer)  # clip and report the true gradient, not the scaled one
    params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    gnorm = (torch.nn.utils.clip_grad_norm_(params, grad_clip) if grad_clip > 0
             else torch.nn.utils.get_total_norm([p.grad for p in params]))
    loss_f, gnorm_f = loss_sum.item(), gnorm.item()
    if scaler.is_enabled():
        scale = scaler.get_scale()
        scaler.step(optimizer)
        scaler.update()
        skipped = scaler.get_scale() < scale  # the scaler backs off exactly when it skipped the step
    else:
        skipped = not (math.isfinite(loss_f) and math.isfinite(gnorm_f))
        if not skipped:
            optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss_f, gnorm_f, skipped


def rng_states(batches, device, world):
    """Every RNG this run draws from (torch CPU: dropout; CUDA; the data sampler), per process."""
    s = {"torch": torch.get_rng_state(), "sampler": batches.state()}
    if device.type == "cuda":
        s["cuda"] = torch.cuda.get_rng_state(device)
    if world == 1:
        return [s]
    out = [None] * world
    dist.all_gather_object(out, s)
    return out


def restore(ckpt, path, optimizer, scaler, batches, device, rank, world, say):
    try:
        optimizer.load_state_dict(ckpt["optimizer"])
    except (KeyError, ValueError, RuntimeError) as e:
        raise UsageError(f"{path}: optimizer state does not fit the model ({type(e).__name__}: {e})") from None
    if scaler.is_enabled() and ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    rng = ckpt.get("rng")
    if isinstance(rng, list) and len(rng) == world:
        torch.set_rng_state(rng[rank]["torch"])
        batches.set_state(rng[rank]["sampler"])
        if device.type == "cuda" and "cuda" in rng[rank]:
            torch.cuda.set_rng_state(rng[rank]["cuda"], device)
    else:
        say(f"note: {path} has no RNG state for {world} process(es) (a nanoGPT checkpoint or another world size): "
            "training continues, but not bit-identically")


def setup_device(cfg, local_rank, say):
    """(torch.device, dtype actually used); impossible requests are UsageErrors, fallbacks are said once."""
    device = torch_device(f"cuda:{local_rank}" if cfg.device == "cuda" else cfg.device, cfg.device)
    dtype = cfg.dtype
    if dtype == "auto":
        dtype = ("bfloat16" if torch.cuda.is_bf16_supported() else "float16") if device.type == "cuda" else "float32"
    if dtype == "float16" and device.type != "cuda":
        say(f"note: dtype float16 needs CUDA's GradScaler; training in float32 on {device.type}")
        dtype = "float32"
    if dtype == "bfloat16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        say(f"note: {torch.cuda.get_device_name(device)} has no bfloat16; training in float16 with a GradScaler")
        dtype = "float16"
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.fp32_precision = "tf32"  # float32 matmuls on tensor cores, as nanoGPT allows
    return device, dtype


def open_log(path):
    """log(line): console plus out_dir/log.txt, appended and flushed per line (a log grows; it is not an
    atomic output). None (non-master processes) logs nothing."""
    f = open(path, "a", encoding="utf-8") if path else None

    def log(line):
        if f:
            print(line, flush=True)
            f.write(line + "\n")
            f.flush()
    return log


def live_diagnose(log_path, seen, say):
    """Run diagnose's detectors on the log so far; print each new warning or critical finding once."""
    try:
        from plateau import detectors

        _, findings = detectors.diagnose(logfmt.parse_file(log_path).runs[-1])
    except Exception as e:  # a detector bug must not end a run that has trained for hours: say so once, go on
        if "error" not in seen:
            seen.add("error")
            say(f"diagnose: unavailable ({type(e).__name__}: {e}); training continues")
        return
    for f in findings:
        if f.severity in ("warning", "critical") and (f.kind, f.severity) not in seen:
            seen.add((f.kind, f.severity))
            say(f"diagnose: [{f.severity}] {f.kind}: {f.title}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__ + "\nkeys (defaults shown):\n" + configurator.help_text())
        return 0
    cfg = configurator.load(argv)
    ddp = "RANK" in os.environ  # set by torchrun / torch.distributed.run
    if ddp:
        if cfg.backend == "nccl" and not cfg.device.startswith("cuda"):
            raise UsageError(f"DDP on device '{cfg.device}' needs --backend=gloo")
        dist.init_process_group(backend=cfg.backend)
    try:
        rank, world = (dist.get_rank(), dist.get_world_size()) if ddp else (0, 1)
        return train(cfg, rank, int(os.environ.get("LOCAL_RANK", 0)), world)
    finally:
        if ddp:
            dist.destroy_process_group()


def train(cfg, rank, local_rank, world):
    master = rank == 0
    say = print if master else (lambda *a, **k: None)
    if cfg.gradient_accumulation_steps % world:
        raise UsageError(f"gradient_accumulation_steps ({cfg.gradient_accumulation_steps}) must be a multiple "
                         f"of the {world} processes")
    grad_accum = cfg.gradient_accumulation_steps // world
    tokens_per_iter = cfg.gradient_accumulation_steps * cfg.batch_size * cfg.block_size  # all processes
    device, dtype = setup_device(cfg, local_rank, say)
    meta = read_meta(cfg.data_dir)
    if meta["vocab_size"] > cfg.vocab_size:
        raise UsageError(f"{cfg.data_dir} has token ids up to {meta['vocab_size'] - 1}; vocab_size {cfg.vocab_size} "
                         f"is too small (use {-(-meta['vocab_size'] // 64) * 64})")
    ckpt_path, log_path = os.path.join(cfg.out_dir, CKPT), os.path.join(cfg.out_dir, LOG)
    if cfg.init_from == "scratch" and os.path.exists(ckpt_path) and not (cfg.force or cfg.eval_only):
        if not master:
            return 2  # every process stops; rank 0 says why
        raise UsageError(f"{ckpt_path} exists from an earlier run: continue it with --init_from=resume, "
                         "or start over with --force=True")
    if master:
        check_writable_dir(cfg.out_dir)
        for tmp in glob.glob(os.path.join(cfg.out_dir, f".{CKPT}.*.tmp")):
            os.remove(tmp)  # a save cut short by a kill; the checkpoint itself is whole
    torch.manual_seed(cfg.seed + rank)
    ctx = (contextlib.nullcontext() if dtype == "float32"
           else torch.autocast(device.type, dtype=getattr(torch, dtype)))
    batches = Batches(cfg, meta, device, rank)
    args = model_args(cfg)
    iter_num, best_val_loss, ckpt = 0, math.inf, None
    if cfg.init_from == "resume":
        ckpt = load_checkpoint(ckpt_path, resume=True)
        raw_model = model_from_checkpoint(ckpt, ckpt_path, expect=args)
        iter_num, best_val_loss = int(ckpt["iter_num"]), float(ckpt["best_val_loss"])
    else:
        raw_model = GPT(GPTConfig(**args))
    raw_model.to(device)  # weights go to the GPU once, from CPU (nanoGPT #158)
    optimizer = raw_model.configure_optimizers(cfg.weight_decay, cfg.learning_rate, (cfg.beta1, cfg.beta2),
                                               device.type)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == "float16")
    if ckpt is not None:
        restore(ckpt, ckpt_path, optimizer, scaler, batches, device, rank, world, say)
        ckpt = None  # free the CPU copy
    model = torch.compile(raw_model) if cfg.compile else raw_model
    if world > 1:
        model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)

    cuda = device.type == "cuda"
    device_name = torch.cuda.get_device_name(device) if cuda else device.type
    peak = cfg.peak_tflops or (gpus.peak_tflops(device_name, dtype) if cuda else None)
    num_params, flops_per_token = raw_model.get_num_params(), raw_model.flops_per_token()
    header = cfg.init_from == "scratch" or not os.path.exists(log_path)
    log = open_log(log_path if master else None)
    info = {"num_params": num_params, "tokens_per_iter": tokens_per_iter, "flops_per_token": flops_per_token,
            "train_tokens": meta["splits"]["train"]["tokens"], "val_tokens": meta["splits"]["val"]["tokens"],
            "train_documents": meta["splits"]["train"]["documents"], "data_vocab_size": meta["vocab_size"],
            "device": str(device), "device_name": device_name, "dtype": dtype, "peak_tflops": peak,
            "torch_version": torch.__version__, "world_size": world, "grad_accum_per_process": grad_accum}
    if cuda:
        info["gpu_memory_gb"] = round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1)  # GiB
    if header:
        for line in (logfmt.format_config(configurator.to_dict(cfg)), logfmt.format_info(info),
                     logfmt.format_num_params(num_params), logfmt.format_tokens_per_iter(tokens_per_iter)):
            log(line)
    if cfg.init_from == "resume":
        log(logfmt.format_resume(iter_num, ckpt_path))
    if peak is None:
        say(f"mfu: no peak TFLOPS known for {device_name} ({dtype}); set --peak_tflops to measure it")
    wandb_run = None
    if cfg.wandb_log and master:
        import wandb

        wandb_run = wandb.init(project=cfg.wandb_project, name=cfg.wandb_run_name, config=configurator.to_dict(cfg))

    start_iter, bad, skipped, seen = iter_num, 0, 0, set()
    last_saved = iter_num if cfg.init_from == "resume" else None  # the checkpoint resumed from is a good one
    try:
        while True:
            if iter_num % cfg.eval_interval == 0 or iter_num >= cfg.max_iters or cfg.eval_only:
                t0 = time.perf_counter()
                eval_model = model.module if world > 1 else model  # each process runs its share, no DDP hooks
                (train_loss, train_se), (val_loss, val_se) = evaluate(eval_model, batches, cfg, ctx, rank,
                                                                      world).values()
                log(logfmt.format_eval(iter_num, train_loss, val_loss, train_se, val_se,
                                       (time.perf_counter() - t0) * 1000))
                if wandb_run:
                    wandb_run.log({"iter": iter_num, "train/loss": train_loss, "val/loss": val_loss,
                                   "train/se": train_se, "val/se": val_se}, step=iter_num)
                if cfg.live_diagnose and master:
                    live_diagnose(log_path, seen, say)
                if cfg.eval_only:
                    break
                # never overwrite a good checkpoint with a diverged model
                if iter_num > start_iter and math.isfinite(val_loss) and (
                        val_loss < best_val_loss or cfg.always_save_checkpoint):
                    best_val_loss = min(best_val_loss, val_loss)
                    t0 = time.perf_counter()
                    rng = rng_states(batches, device, world)
                    if master:
                        save_checkpoint(ckpt_path, raw_model, optimizer=optimizer.state_dict(),
                                        scaler=scaler.state_dict(), iter_num=iter_num, best_val_loss=best_val_loss,
                                        config=configurator.to_dict(cfg), rng=rng)
                        log(logfmt.format_checkpoint(cfg.out_dir, (time.perf_counter() - t0) * 1000))
                    last_saved = iter_num
            if iter_num >= cfg.max_iters:
                break
            lr = get_lr(cfg, iter_num)
            for group in optimizer.param_groups:
                group["lr"] = lr
            t0 = time.perf_counter()
            loss, gnorm, skip = train_step(model, optimizer, scaler, batches, grad_accum, ctx, cfg.grad_clip,
                                           world > 1)
            if cuda:
                torch.cuda.synchronize()  # the time covers this iteration's kernels, and only them
            dt = time.perf_counter() - t0
            skipped += skip
            bad = 0 if math.isfinite(loss) else bad + 1
            if iter_num % cfg.log_interval == 0 or bad:
                mfu = 100 * flops_per_token * tokens_per_iter / dt / (peak * 1e12 * world) if peak else None
                scale = scaler.get_scale() if scaler.is_enabled() else None
                log(logfmt.format_iter(iter_num, loss, dt * 1000, mfu, lr, gnorm, tokens_per_iter / dt, scale,
                                       skipped if scale else None))
                if wandb_run:
                    wandb_run.log({"iter": iter_num, "loss": loss, "lr": lr, "mfu": mfu, "gnorm": gnorm,
                                   "tok_s": tokens_per_iter / dt, "scale": scale, "skipped": skipped}, step=iter_num)
            if bad >= cfg.nan_patience:
                if not master:
                    return 2
                kept = (f"the last good checkpoint, {ckpt_path} (iter {last_saved}), is intact"
                        if last_saved is not None else "no checkpoint of this run was saved")
                raise UsageError(
                    f"loss not finite for {bad} iterations in a row (iter {iter_num}); stopped, {kept}. Likely: "
                    f"learning_rate {cfg.learning_rate:g} too high for {tokens_per_iter:,} tokens/iter (lower it), "
                    f"fp16 overflow (try --dtype=bfloat16 or a lower learning_rate), or bad data")
            iter_num += 1
    except torch.OutOfMemoryError:
        b, g = cfg.batch_size, cfg.gradient_accumulation_steps
        hint = (f"try --batch_size={b // 2} --gradient_accumulation_steps={g * 2} (same {tokens_per_iter:,} "
                "tokens/iter)" if b > 1 else "reduce block_size or the model")
        raise UsageError(f"CUDA out of memory at batch_size {b} x block_size {cfg.block_size}: {hint}") from None
    finally:
        if wandb_run:
            wandb_run.finish()
    return 0


if __name__ == "__main__":
    sys.exit(plateau.cli.run(main))

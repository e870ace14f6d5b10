# The recommended run for one FineWeb parquet on a 12 GB RTX 4070: GPT-2 small (124M).
#   python prepare.py fineweb/000_00000.parquet --out-dir data/fineweb
#   python train.py config/fineweb_4070.py
#   python train.py config/fineweb_4070.py --init_from=resume      # after a stop, continues exactly
# Why not the 40M model of config/fineweb_4070_40m.py: by iter 10k it had seen ~130 tokens per
# parameter (compute-optimal is ~20, Hoffmann et al. 2022) and flattened at val ~3.6; the same
# author's 124M run reached val ~3.36 by iter 10k on the same data. The size was the limit.

out_dir = "out-fineweb"
data_dir = "data/fineweb"
wandb_log = False
wandb_project = "fineweb"
wandb_run_name = "gpt2-124m-4070"

# model: GPT-2 small. 123.59M parameters as nanoGPT counts them (position embeddings excluded).
n_layer = 12
n_head = 12
n_embd = 768
block_size = 1024
vocab_size = 50304  # GPT-2's 50257 padded to a multiple of 64
bias = False
dropout = 0.0  # one pass or a few over the data: dropout only slows pretraining down

# batch: 16 sequences x 1024 tokens x 32 micro-steps = 524,288 tokens per iteration (~0.5M, GPT-3 small's batch).
# Memory at micro-batch 16, 16-bit: ~2 GB of fp32 weights, grads and AdamW state + ~5.4 GB of saved
# activations + ~0.3 GB for one chunk of the loss's logits = ~7.6 GiB, under the 4070's 12 GB
# (`python benchmarks/train_throughput.py` prints this estimate; with --device=cuda it measures it).
# Stock nanoGPT runs out of memory here: it holds the (16, 1024, 50304) logits, ~8 GB with their
# fp32 copy and gradient; train.py's chunked loss never does. If an OOM happens anyway (another
# process on the card), its message names the batch_size / gradient_accumulation_steps pair to use.
batch_size = 16
gradient_accumulation_steps = 32

# optimizer: GPT-3 paper's learning rate for 125M (6e-4), min_lr = lr/10, betas (0.9, 0.95), wd 0.1
learning_rate = 6e-4
min_lr = 6e-5
beta1 = 0.9
beta2 = 0.95
weight_decay = 0.1
grad_clip = 1.0

# length: ~20 tokens per parameter is compute-optimal: 20 x 124M = 2.5B tokens. One parquet holds
# ~1e9 GPT-2 tokens (prepare.py prints the exact count and writes it to meta.json), so 5,000
# iterations x 524,288 = 2.62B tokens = 21 tokens/param = ~2.6 epochs; up to ~4 epochs repeated
# data is nearly as good as fresh (Muennighoff et al. 2023). 855M FLOPs/token x 524,288 tokens at
# 70% of the 4070's 58.3 TFLOPS (stock nanoGPT reaches ~82% on this card) is ~11 s per iteration:
# ~15 hours for 5,000.
# More parquet files: keep max_iters = 5000 (fewer epochs, slightly better loss) or, to train past
# compute-optimal, raise max_iters and lr_decay_iters together, keeping epochs <= 4
# (max_iters <= 4 x dataset tokens / 524,288; ~1,900 iterations per epoch per 1e9 tokens).
max_iters = 5000
lr_decay_iters = 5000
warmup_iters = 715  # GPT-3's 375M warmup tokens / 524,288
lr_schedule = "cosine"

# eval: 100 fixed batches x 16 x 1024 = 1.6M tokens per split, standard error ~0.005;
# ~1% of the time at every 250 iterations
eval_interval = 250
eval_iters = 100
log_interval = 10
always_save_checkpoint = True

# system: fp16 autocast + GradScaler. The 4070 runs bf16 at the same tensor rate (58.3 TFLOPS);
# fp16 keeps 3 more mantissa bits and the scaler handles its range. If the log shows `skipped`
# climbing or the run stops on non-finite losses, switch to dtype = "bfloat16".
device = "cuda"
dtype = "float16"
compile = True

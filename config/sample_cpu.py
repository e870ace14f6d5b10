# A tiny GPT that visibly learns prepare.py's sample data in about a minute on 2 CPU cores.
#   python prepare.py --sample --out-dir data/sample && python train.py config/sample_cpu.py
# Tests and tools override data_dir, out_dir, max_iters, eval_interval, eval_iters, log_interval,
# compile, init_from, always_save_checkpoint, device and dtype.

out_dir = "out-sample"
data_dir = "data/sample"
device = "cpu"
dtype = "float32"
compile = False  # compiling would take longer than this whole run
wandb_log = False

# model: 4 layers x 64 wide. The tied 50304 x 64 token embedding is 3.2M of its 3.4M parameters,
# and the 50304-way softmax is most of the compute: the sample's GPT-2 tokens force that vocab.
n_layer = 4
n_head = 4
n_embd = 64
block_size = 64
dropout = 0.0
bias = False

# batch: 8 sequences x 64 tokens x 1 micro-step = 512 tokens per iteration
batch_size = 8
gradient_accumulation_steps = 1

# schedule: a small model takes a high LR; 200 iterations see 102k tokens, ~18% of the sample's ~0.56M,
# enough for val to fall from ln(50304) = 10.8 to about 5.9 (common tokens first, then pairs).
# ~55 s on 2 idle CPU cores (~2,200 tokens/s); several times longer on a busy machine.
learning_rate = 3e-3
min_lr = 3e-4
max_iters = 200
lr_decay_iters = 200
warmup_iters = 10
beta2 = 0.99
weight_decay = 0.1

# 4 fixed batches per split: ~1 s per eval. Their standard error (~0.24, 4% of the loss) is far smaller
# than the fall, but too coarse to compare runs by: diagnose.py says so (eval_variance) and names the fix.
eval_interval = 50
eval_iters = 4
log_interval = 20
always_save_checkpoint = True

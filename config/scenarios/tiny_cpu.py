# The healthy baseline of benchmarks/diagnose_scenarios.py: a tiny GPT that learns in ~20 s on one idle CPU core.
#   python train.py config/scenarios/tiny_cpu.py --data_dir=DIR --out_dir=DIR
# The data is prepare.py's sample remapped to 512 token ids (the benchmark writes it): with GPT-2's
# 50k-token head every CPU step would be ~60x slower.

device = "cpu"
dtype = "float32"
compile = False
wandb_log = False
live_diagnose = False  # the benchmark diagnoses the finished log
always_save_checkpoint = False

# model: 2 x 64 wide, 512-token vocabulary: about 0.13M parameters
vocab_size = 512
n_layer = 2
n_head = 2
n_embd = 64
block_size = 64
dropout = 0.0
bias = False

# batch: 16 sequences x 64 tokens x 1 micro-step = 1,024 tokens per iteration
batch_size = 16
gradient_accumulation_steps = 1

# schedule: 600 iterations see 614k tokens, ~1.1 epochs of the sample's 549k train tokens
learning_rate = 3e-3  # the best of 1e-4, 3e-4, 1e-3, 3e-3, 1e-2 (val 4.07, 3.50, 3.18, 3.01, 3.13 at 600 iters)
min_lr = 3e-4
max_iters = 600
lr_decay_iters = 600
warmup_iters = 30
beta2 = 0.99
weight_decay = 0.1

# 100 eval batches give val se ~0.014 (0.5% of the loss), enough to resolve the change over 100 iters
eval_interval = 100
eval_iters = 100
log_interval = 5

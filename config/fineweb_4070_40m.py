# The user's original run, kept to reproduce the plateau (shared/real_logs/user_run_40m_fineweb_4070.log):
# val falls to ~3.6 by iter 10,000, then creeps to 3.52 at 20,000.
#   python train.py config/fineweb_4070_40m.py
#   python diagnose.py out-fineweb-40m/log.txt
# The original comment called this model "~125M". That is WRONG: it has 40.56M parameters
# (12 blocks x 12 x 384^2 = 21.2M + the tied 50304 x 384 = 19.3M token embedding).
# 124M is GPT-2 small, n_embd 768: config/fineweb_4070.py.

out_dir = "out-fineweb-40m"
data_dir = "data/fineweb"
wandb_log = False
wandb_project = "fineweb"
wandb_run_name = "40m-4070"

n_layer = 12
n_head = 12
n_embd = 384
block_size = 1024
bias = False
dropout = 0.1

# 16 sequences x 1024 tokens x 32 micro-steps = 524,288 tokens per iteration
batch_size = 16
gradient_accumulation_steps = 32

learning_rate = 1e-3
min_lr = 1e-4
beta2 = 0.99
weight_decay = 0.1
warmup_iters = 500
# 20,000 x 524,288 = 10.5B tokens: ~10 passes over a ~1e9-token parquet, ~258 tokens per parameter
max_iters = 20000
lr_decay_iters = 20000

eval_interval = 500
eval_iters = 200
log_interval = 200

device = "cuda"
dtype = "float16"
compile = True

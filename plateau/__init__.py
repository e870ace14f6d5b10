"""Shared contracts of the trainer and the diagnoser: config, tokenizer, data format, log format, GPU peaks."""

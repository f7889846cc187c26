"""slmbot's models: tokenizer, joint intent/slot model, training, checkpoints, metrics.

Knows nothing about bots, channels or HTTP: the runtime in `bot/` builds on it.
"""

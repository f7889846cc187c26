"""A worker's oneDNN kernel cache: bounded, because every new input shape would add a kernel to it."""

import os
import subprocess
import sys
from pathlib import Path

from bot.process_memory import ONEDNN_CACHE, bound_kernel_cache

ROOT = Path(__file__).resolve().parents[2]
# The model's recurrent layer and character convolution, run on 300 batch shapes as a worker meets them.
MANY_SHAPES = """
import sys
import torch
torch.set_num_threads(1)
if sys.argv[1] == "bound":
    from bot.process_memory import bound_kernel_cache
    bound_kernel_cache()

def rss_mb():
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) // 1024

lstm = torch.nn.LSTM(64, 64, batch_first=True, bidirectional=True).eval()
conv = torch.nn.Conv1d(32, 48, 3, padding=1).eval()
with torch.inference_mode():
    lstm(torch.zeros(1, 1, 64)), conv(torch.zeros(1, 32, 5))
    before = rss_mb()
    for batch in range(1, 21):
        for length in range(1, 16):
            lstm(torch.zeros(batch, length, 64)), conv(torch.zeros(batch * length, 32, 7))
print(rss_mb() - before)
"""


def growth_mb(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != ONEDNN_CACHE}
    result = subprocess.run([sys.executable, "-c", MANY_SHAPES, mode], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return int(result.stdout)


def test_a_worker_does_not_grow_with_every_new_input_shape():
    kept, bounded = growth_mb("keep"), growth_mb("bound")
    assert bounded < kept / 2, f"with the whole cache {kept} MB, with 64 kernels {bounded} MB"


def test_an_operators_own_setting_wins(monkeypatch):
    monkeypatch.setenv(ONEDNN_CACHE, "8")
    bound_kernel_cache()
    assert os.environ[ONEDNN_CACHE] == "8"
    monkeypatch.delenv(ONEDNN_CACHE)
    bound_kernel_cache()
    assert os.environ[ONEDNN_CACHE] == "64"

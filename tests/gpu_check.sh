#!/usr/bin/env bash
# Chapter 8 on a CUDA GPU: what a session with a GPU runs, and the figures it records.
#
#     bash tests/gpu_check.sh          (from anywhere; PY=/path/to/python to choose the Python)
#
# 1. tests/test_gpu.py, with the tests marked for CUDA (they must pass, not skip);
# 2. the chapter executed top to bottom on the GPU and timed (tests/benchmark_chapters.py),
#    when nbclient and ipykernel are installed;
# 3. the device figures issue 14 asks the closing note to record: matrix-product throughput
#    as a fraction of the measured peak, host-to-device copy bandwidth from pageable and
#    pinned memory, and the bfloat16 / float32 time ratio (plus the launch-only timing error).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PY:-python}

"$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else "no CUDA GPU here: nothing to check")'

echo "== 1. tests (CUDA tests included)"
"$PY" -m pytest -q -p no:cacheprovider -rs tests/test_gpu.py

echo "== 2. the chapter, executed on the GPU"
if "$PY" -c 'import nbclient, ipykernel' 2>/dev/null; then
    "$PY" tests/benchmark_chapters.py 08_gpu
else
    echo "nbclient or ipykernel is missing: the chapter was not executed"
fi

echo "== 3. device figures"
"$PY" - <<'EOF'
import torch

from nnopt import gpu

dev = gpu.device()
print(f"device: {gpu.describe(dev)}")
roofline = gpu.measure_roofline(dev)
print(f"measured peak {roofline.peak_flops / 1e12:.2f} TFLOP/s (float32, TF32 "
      f"{'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}), bandwidth {roofline.bandwidth / 1e9:.0f} GB/s, "
      f"ridge {roofline.ridge:.1f} FLOP/byte")
print("matrix product n: fraction of the measured peak")
for n, rate in roofline.matmul.items():
    print(f"  {n:6d}: {rate / 1e12:7.2f} TFLOP/s  {rate / roofline.peak_flops:5.0%}")
copies = gpu.copy_bandwidth(256 * 2**20, dev)
print(f"host-to-device copy of 256 MB: pageable {copies['pageable'] / 1e9:.1f} GB/s, pinned {copies['pinned'] / 1e9:.1f} GB/s")
for size, batch in [(512, 256), (8192, 8192)]:
    times = gpu.precision_times(dev, size=size, batch=batch)
    product, transposed, step = times["matrix product"], times["product with B.T"], times["network step"]
    print(f"bfloat16 / float32 time, {size}x{size} product A B: {product['bfloat16'] / product['float32']:.2f}, "
          f"A B^T: {transposed['bfloat16'] / transposed['float32']:.2f}; "
          f"network step, batch {batch}: {step['bfloat16'] / step['float32']:.2f}")
a = torch.randn(4096, 4096, device=dev)
times = gpu.launch_and_finish_times(lambda: a @ a, dev)
print(f"4096x4096 product: clock read on return {times['returned'] * 1e3:.3f} ms, "
      f"after synchronising {times['finished'] * 1e3:.3f} ms")
EOF

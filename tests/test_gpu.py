"""Chapter 8: the cost models (nnopt.cost) against hand counts, FlopCounterMode and the bytes of real
tensors; the simulated ring all-reduce; the device helpers (nnopt.gpu) on the CPU, a two-process
data-parallel step with torch.distributed, and, where a CUDA GPU is present, the device's own
measurements (skipped without one)."""

import time

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from nnopt import cost, gpu, train

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
DTYPES = [(torch.float16, 2), (torch.bfloat16, 2), (torch.float32, 4), (torch.float64, 8)]


def counted_flops(function):
    with FlopCounterMode(display=False) as counter:
        result = function()
    return counter.get_total_flops(), result


# --- counts ---------------------------------------------------------------------------------------


def test_matmul_cost_by_hand():
    assert cost.matmul_cost(2, 3, 4) == (48, 4 * (6 + 12 + 8))
    assert cost.matmul_cost(1, 1, 1, dtype_size=2) == (2, 6)
    assert cost.matmul_cost(1024, 1024, 1024, dtype_size=4) == (2 * 1024**3, 12 * 1024**2)


@pytest.mark.parametrize("dtype,size", DTYPES)
def test_matmul_cost_matches_flop_counter_and_tensor_bytes(dtype, size):
    rng = np.random.default_rng(0)
    for _ in range(5):
        m, k, n = (int(v) for v in rng.integers(1, 40, size=3))
        a, b = torch.ones(m, k, dtype=dtype), torch.ones(k, n, dtype=dtype)
        flops, product = counted_flops(lambda: a @ b)
        assert cost.matmul_cost(m, k, n, dtype_size=size) == (flops, a.nbytes + b.nbytes + product.nbytes)


def test_linear_layer_is_a_matmul_to_the_flop_counter():
    layer = torch.nn.Linear(16, 8)  # the bias is not counted, as in cost.matmul_cost
    flops, _ = counted_flops(lambda: layer(torch.ones(5, 16)))
    assert flops == cost.matmul_cost(5, 16, 8)[0]


def test_elementwise_cost_by_hand_and_uncounted_by_the_flop_counter():
    assert cost.elementwise_cost(1000) == (1000, 8000)
    assert cost.elementwise_cost(1000, inputs=2, dtype_size=2) == (1000, 6000)
    assert cost.elementwise_cost(10, flops_per_element=3, dtype_size=8) == (30, 160)
    x = torch.ones(1000)
    flops, y = counted_flops(lambda: torch.mul(x, 2))
    assert flops == 0  # FlopCounterMode counts matrix products and convolutions only
    assert cost.elementwise_cost(1000)[1] == x.nbytes + y.nbytes


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1), (3, 2)])
def test_conv2d_cost_matches_flop_counter_and_tensor_bytes(stride, padding):
    x, w = torch.ones(2, 3, 11, 9), torch.ones(4, 3, 3, 2)
    flops, y = counted_flops(lambda: torch.nn.functional.conv2d(x, w, torch.ones(4), stride=stride, padding=padding))
    assert cost.conv2d_cost(x.shape, w.shape, stride, padding) == (flops, x.nbytes + w.nbytes + y.nbytes)


def test_conv2d_cost_by_hand():
    # 1 image, 1 channel, 4x4, one 3x3 filter: 2x2 outputs, each 9 multiply-adds
    assert cost.conv2d_cost((1, 1, 4, 4), (1, 1, 3, 3), dtype_size=1) == (2 * 4 * 9, 16 + 9 + 4)
    assert cost.conv2d_output_size(32, 3, stride=2, padding=1) == 16


def test_counts_reject_bad_arguments():
    with pytest.raises(ValueError, match="m must be"):
        cost.matmul_cost(0, 2, 2)
    with pytest.raises(ValueError, match="dtype_size"):
        cost.matmul_cost(2, 2, 2, dtype_size=2.5)
    with pytest.raises(ValueError, match="input channels"):
        cost.conv2d_cost((1, 3, 8, 8), (4, 2, 3, 3))
    with pytest.raises(ValueError, match="kernel 5 is larger"):
        cost.conv2d_cost((1, 1, 2, 2), (1, 1, 5, 5))


# --- the roofline ---------------------------------------------------------------------------------


def test_attainable_flops_is_the_lower_roof():
    peak, bandwidth = 1e12, 1e11  # ridge point at 10 FLOP/byte
    intensity = np.array([0.0, 1.0, 10.0, 100.0])
    np.testing.assert_array_equal(cost.attainable_flops(intensity, peak, bandwidth), [0.0, 1e11, 1e12, 1e12])
    assert cost.attainable_flops(2.5, peak, bandwidth) == 2.5e11
    assert isinstance(cost.attainable_flops(2.5, peak, bandwidth), float)
    assert cost.attainable_flops(intensity.reshape(2, 2), peak, bandwidth).shape == (2, 2)
    with pytest.raises(ValueError, match="intensity"):
        cost.attainable_flops(-1.0, peak, bandwidth)
    with pytest.raises(ValueError, match="peak_flops"):
        cost.attainable_flops(1.0, -peak, bandwidth)


def test_small_batches_are_memory_bound():
    """A linear layer's intensity grows with the batch: about 2b/s FLOP/byte while the weights dominate."""
    intensity = {b: np.divide(*cost.matmul_cost(b, 1024, 1024)) for b in (1, 8, 64, 4096)}
    assert intensity[1] == pytest.approx(2 / 4, rel=0.01)
    assert intensity[1] < intensity[8] < intensity[64] < intensity[4096] < 1024 / 4  # at most w/s, as b grows


# --- the ring all-reduce ------------------------------------------------------------------------


@pytest.mark.parametrize("workers,elements", [(1, 5), (2, 6), (3, 7), (4, 3), (4, 100), (7, 50), (8, 64)])
def test_ring_allreduce_averages_and_sends_two_chunks_per_step(workers, elements):
    arrays = np.random.default_rng(workers).normal(size=(workers, elements))
    before = arrays.copy()
    results, bytes_sent = cost.ring_allreduce(arrays)
    np.testing.assert_array_equal(arrays, before)
    assert results.shape == arrays.shape and results.dtype == np.float64 and not np.shares_memory(results, arrays)
    np.testing.assert_allclose(results, np.broadcast_to(arrays.mean(axis=0), arrays.shape), rtol=1e-12, atol=1e-14)
    assert bytes_sent.dtype == np.int64 and bytes_sent.shape == (workers,)
    assert bytes_sent.sum() == 2 * (workers - 1) * arrays.nbytes // workers  # every chunk travels P-1 times, twice
    if elements % workers == 0:
        np.testing.assert_array_equal(bytes_sent, 2 * (workers - 1) * elements // workers * 8)


def test_ring_allreduce_bytes_per_worker_stay_near_twice_the_array():
    for workers in (2, 4, 16, 64):
        arrays = np.ones((workers, 64 * 1024), dtype=np.float32)
        results, bytes_sent = cost.ring_allreduce(arrays)
        assert results.dtype == np.float32
        np.testing.assert_array_equal(bytes_sent, 2 * (workers - 1) / workers * arrays[0].nbytes)
        assert (bytes_sent < 2 * arrays[0].nbytes).all()


def test_ring_allreduce_rejects_bad_input():
    with pytest.raises(ValueError, match="arrays must be a 2-D float array"):
        cost.ring_allreduce(np.ones(4))
    with pytest.raises(ValueError, match="arrays must be a 2-D float array"):
        cost.ring_allreduce(np.ones((2, 3), dtype=int))


def test_allreduce_cost_model():
    nbytes, bandwidth, latency = 1e8, 1e10, 1e-5
    for workers in (2, 8, 64):
        ring = cost.allreduce_seconds(nbytes, workers, bandwidth, latency)
        assert ring == pytest.approx(2 * (workers - 1) * latency + 2 * (workers - 1) / workers * nbytes / bandwidth)
        naive = cost.allreduce_seconds(nbytes, workers, bandwidth, latency, algorithm="all-to-all")
        assert naive == pytest.approx((workers - 1) * (latency + nbytes / bandwidth))
    assert cost.allreduce_seconds(nbytes, 1024, bandwidth) < 2 * nbytes / bandwidth  # bounded in P
    with pytest.raises(ValueError, match="algorithm"):
        cost.allreduce_seconds(nbytes, 4, bandwidth, algorithm="tree")


# --- nnopt.gpu on the CPU (and on CUDA when present) ----------------------------------------------


def test_device_is_cuda_exactly_when_available():
    assert gpu.device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert gpu.describe(gpu.device()).startswith("CUDA GPU" if torch.cuda.is_available() else "CPU")


def test_time_medians_synchronises_the_device(monkeypatch):
    waited = []
    monkeypatch.setattr(gpu, "synchronize", lambda where: waited.append(where))
    seconds = gpu.time_medians({"a": lambda: None, "b": lambda: None}, "cpu", repeats=3, min_seconds=0.0)
    assert set(seconds) == {"a", "b"} and all(s >= 0 for s in seconds.values())
    assert len(waited) == 2 * (2 + 2 * 3)  # before and after calibration and every timed turn


def test_clock_is_thread_time_on_one_cpu_thread_else_wall_clock():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert gpu.clock("cpu") is time.thread_time
        torch.set_num_threads(2)
        assert gpu.clock("cpu") is time.perf_counter
    finally:
        torch.set_num_threads(threads)
    assert gpu.clock("cuda") is time.perf_counter


def test_launch_and_finish_agree_on_the_cpu():
    a = torch.ones(256, 256)
    times = gpu.launch_and_finish_times(lambda: a @ a, "cpu", repeats=5)
    assert 0 < times["returned"] <= times["finished"]
    assert times["returned"] > 0.5 * times["finished"]  # the CPU call does the work before it returns


def test_measured_roofline_on_the_cpu():
    roofline = gpu.measure_roofline("cpu", matmul_sizes=(32, 128), elementwise_sizes=(1024, 65536), repeats=3)
    assert roofline.peak_flops == max(roofline.matmul.values()) > 0
    assert roofline.bandwidth == roofline.elementwise[65536] > 0
    assert roofline.ridge == roofline.peak_flops / roofline.bandwidth
    assert roofline.attainable(1e9) == roofline.peak_flops
    assert roofline.attainable(0.0) == 0.0


def test_copy_bandwidth_needs_cuda():
    with pytest.raises(ValueError, match="needs a CUDA device"):
        gpu.copy_bandwidth(1024, "cpu")


def test_forward_backward_in_bfloat16_keeps_float32_weights_and_gradients():
    model = train.mlp((8, 16, 3), seed=0)
    inputs, targets = torch.randn(4, 8, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 2, 1])
    reference = gpu.gradients(model, inputs, targets)
    loss = gpu.forward_backward(model, inputs, targets, precision=torch.bfloat16)
    assert loss.dtype == torch.float32  # autocast computes the loss in float32
    assert all(p.dtype == p.grad.dtype == torch.float32 for p in model.parameters())
    for low, exact in zip((p.grad.double().numpy() for p in model.parameters()), reference):
        np.testing.assert_allclose(low, exact, atol=0.05 * np.abs(exact).max())  # bfloat16 keeps ~3 digits


def test_precision_times_time_the_same_work_in_both_precisions():
    times = gpu.precision_times("cpu", size=64, sizes=(8, 16, 4), batch=8, repeats=1)
    assert set(times) == {"matrix product", "product with B.T", "network step"}
    assert all(set(row) == {"float32", "bfloat16"} and min(row.values()) > 0 for row in times.values())


def test_cpu_precision_times_name_the_kernel_of_each_instruction_set():
    line = "onednn_verbose,v1,primitive,exec,cpu,matmul,brg_matmul:avx512_core_bf16,undef,src:bf16::blocked:ab::f0 wei:bf16"
    assert gpu._bf16_kernel("other output\n" + line) == "brg_matmul:avx512_core_bf16"
    assert gpu._bf16_kernel("onednn_verbose,v1,info,cpu,isa:AVX2") is None
    ((times, kernel),) = gpu.cpu_precision_times(["AVX2"], size=256, batch=64).values()
    assert kernel is None  # without AVX-512, oneDNN has no bfloat16 matrix product and PyTorch's own loop runs
    assert times["matrix product"]["bfloat16"] > times["matrix product"]["float32"]
    # the page says that loop runs A @ B.T (dot products of contiguous rows) several times faster than A @ B
    assert times["product with B.T"]["bfloat16"] < times["matrix product"]["bfloat16"] / 2


def test_data_parallel_step_gives_the_gradient_of_the_whole_batch():
    sizes = (12, 16, 4)
    generator = torch.Generator().manual_seed(1)
    inputs, targets = torch.randn(10, 12, generator=generator), torch.randint(0, 4, (10,), generator=generator)
    per_worker = gpu.data_parallel_gradients(sizes, inputs, targets, workers=2, seed=3)
    whole_batch = gpu.gradients(train.mlp(sizes, seed=3), inputs, targets)
    assert len(per_worker) == 2
    for worker in per_worker:
        for shard_mean, exact in zip(worker, whole_batch):
            np.testing.assert_allclose(shard_mean, exact, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="equal shards"):
        gpu.data_parallel_gradients(sizes, inputs, targets, workers=3)


@cuda
def test_launch_returns_before_the_kernel_finishes_on_cuda():
    a = torch.ones(4096, 4096, device="cuda")
    times = gpu.launch_and_finish_times(lambda: a @ a, "cuda")
    assert times["returned"] < 0.5 * times["finished"]


@cuda
def test_measured_roofline_and_copies_on_cuda():
    roofline = gpu.measure_roofline("cuda")
    assert roofline.peak_flops > 1e12 and roofline.bandwidth > 1e11  # any CUDA GPU of the last decade
    speeds = gpu.copy_bandwidth(256 * 2**20, "cuda")
    assert speeds["pageable"] > 0 and speeds["pinned"] > 0
    host = torch.arange(1000.0).pin_memory()
    assert torch.equal(host.to("cuda", non_blocking=True).cpu(), host)


@cuda
def test_bfloat16_matmul_is_faster_than_float32_on_cuda():
    a = torch.ones(4096, 4096, device="cuda")
    b = a.bfloat16()
    seconds = gpu.time_medians({"float32": lambda: a @ a, "bfloat16": lambda: b @ b}, "cuda")
    assert seconds["bfloat16"] < seconds["float32"]

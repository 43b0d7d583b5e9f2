"""Running on the device at hand (chapter 8): the same code on a CUDA GPU or on the CPU.

* :func:`device` picks CUDA when there is one, else the CPU; :func:`describe` names it;
* :func:`time_medians` times functions in turns and reports medians, synchronising the
  device before every clock reading (a CUDA call returns before its kernel has run),
  with the :func:`clock` that suits the device;
  :func:`launch_and_finish_times` shows what goes wrong without that;
* :func:`matmul_throughput`, :func:`elementwise_bandwidth` and :func:`measure_roofline`
  measure the two roofs of the roofline model on this device;
* :func:`copy_bandwidth` times host-to-device copies from pageable and pinned memory;
* :func:`forward_backward` runs one training step's forward and backward pass, in float32
  or under autocast to a lower precision; :func:`precision_times` times the same work in
  float32 and bfloat16, and :func:`cpu_precision_times` does it on the CPU as chips with
  fewer instructions would (no bfloat16 instructions, no AVX-512);
* :func:`data_parallel_gradients` runs one data-parallel step in several processes with
  ``torch.distributed`` (Gloo, on the CPU) and returns every worker's averaged gradient.

The arithmetic of the models (FLOPs, bytes, the roofline, the all-reduce) is in
:mod:`nnopt.cost`, which needs no PyTorch.
"""

import json
import os
import platform
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

from . import cost, experiments, train


def device():
    """``torch.device("cuda")`` when a CUDA GPU is available, else ``torch.device("cpu")``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _cpu_name():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def bf16_instructions():
    """Whether this CPU has bfloat16 dot-product instructions (AVX512-BF16 or AMX) that PyTorch can use."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def describe(where):
    """One line naming the device that produced a measurement."""
    where = torch.device(where)
    if where.type == "cuda":
        index = where.index if where.index is not None else torch.cuda.current_device()
        return f"CUDA GPU {torch.cuda.get_device_name(index)} (PyTorch {torch.__version__}, CUDA {torch.version.cuda})"
    return (
        f"CPU {_cpu_name()} ({os.cpu_count()} logical CPUs; PyTorch {torch.__version__} on {torch.get_num_threads()} "
        f"thread(s); vector unit {torch.backends.cpu.get_cpu_capability()}; bfloat16 instructions: "
        f"{'yes' if bf16_instructions() else 'no'})"
    )


def synchronize(where):
    """Wait until everything queued on ``where`` has finished (nothing to wait for on the CPU)."""
    where = torch.device(where)
    if where.type == "cuda":
        torch.cuda.synchronize(where)


def clock(where):
    """The clock that times work on ``where``: wall-clock time, except on a CPU running PyTorch
    on one thread, where the calling thread's CPU time (``time.thread_time``) measures the
    same work without the time other processes of a busy machine take from it."""
    if torch.device(where).type == "cpu" and torch.get_num_threads() == 1:
        return time.thread_time
    return time.perf_counter


def time_medians(functions, where, repeats=5, warmup=1, min_seconds=0.005):
    """Median seconds per call of each of ``functions`` on device ``where``, timed in turns.

    :func:`nnopt.experiments.interleaved_medians` with the :func:`clock` of ``where``
    and the device synchronised before every reading of the clock, so that each time
    covers the work itself and not only its launch.
    """
    return experiments.interleaved_medians(
        functions, repeats, warmup, min_seconds, synchronize=lambda: synchronize(where), clock=clock(where)
    )


def launch_and_finish_times(operation, where, repeats=11):
    """Median seconds of one call of ``operation``, read two ways from the same calls.

    Each repeat starts from an idle device, reads the clock when the call returns
    (``"returned"``) and again after synchronising (``"finished"``). On a GPU the call
    returns once the kernel is queued, so ``"returned"`` measures the launch only; on
    the CPU the call does the work, and the two agree.
    """
    read = clock(where)
    returned, finished = [], []
    operation()
    for _ in range(repeats):
        synchronize(where)
        started = read()
        operation()
        returned.append(read() - started)
        synchronize(where)
        finished.append(read() - started)
    return {"returned": float(np.median(returned)), "finished": float(np.median(finished))}


def _bytes_per_element(dtype):
    return torch.empty((), dtype=dtype).element_size()


def matmul_throughput(sizes, where, dtype=torch.float32, repeats=5):
    """FLOP/s of square matrix products ``(n, n) @ (n, n)`` on ``where``, for each ``n`` in ``sizes``."""
    generator = torch.Generator().manual_seed(0)
    operands = {n: [torch.randn(n, n, generator=generator).to(where, dtype) for _ in range(2)] for n in sizes}
    seconds = time_medians({n: (lambda a=a, b=b: a @ b) for n, (a, b) in operands.items()}, where, repeats)
    return {n: cost.matmul_cost(n, n, n, _bytes_per_element(dtype))[0] / seconds[n] for n in sizes}


def elementwise_bandwidth(sizes, where, dtype=torch.float32, repeats=5):
    """Bytes/s moved by ``torch.mul(x, 2, out=y)`` on tensors of each number of elements in ``sizes``.

    One read and one write per element (:func:`nnopt.cost.elementwise_cost`); the output
    is preallocated so that no allocation is timed.
    """
    tensors = {numel: (torch.ones(numel, device=where, dtype=dtype), torch.empty(numel, device=where, dtype=dtype)) for numel in sizes}
    functions = {numel: (lambda x=x, y=y: torch.mul(x, 2, out=y)) for numel, (x, y) in tensors.items()}
    seconds = time_medians(functions, where, repeats)
    size = _bytes_per_element(dtype)
    return {numel: cost.elementwise_cost(numel, dtype_size=size)[1] / seconds[numel] for numel in sizes}


@dataclass(frozen=True)
class Roofline:
    """A device's two roofs, measured: peak FLOP/s of matrix products and bytes/s to memory.

    ``matmul`` maps each measured size ``n`` to its FLOP/s and ``elementwise`` each
    number of elements to its bytes/s: ``peak_flops`` is the best of ``matmul``, and
    ``bandwidth`` the bandwidth at the largest array (larger than the caches).
    """

    peak_flops: float
    bandwidth: float
    matmul: dict
    elementwise: dict

    @property
    def ridge(self):
        """The intensity (FLOP/byte) where the two roofs meet."""
        return self.peak_flops / self.bandwidth

    def attainable(self, intensity):
        return cost.attainable_flops(intensity, self.peak_flops, self.bandwidth)


DEFAULT_SIZES = {  # (matrix sizes n, elementwise numbers of elements) per device type
    "cpu": ((16, 32, 64, 128, 256, 512, 1024), tuple(4**k for k in range(6, 13))),
    "cuda": ((256, 512, 1024, 2048, 4096, 8192), tuple(4**k for k in range(8, 14))),
}


def measure_roofline(where, matmul_sizes=None, elementwise_sizes=None, dtype=torch.float32, repeats=5):
    """Measure the roofline of ``where`` in ``dtype`` (sizes default to :data:`DEFAULT_SIZES`)."""
    where = torch.device(where)
    default_matmul, default_elementwise = DEFAULT_SIZES["cuda" if where.type == "cuda" else "cpu"]
    matmul = matmul_throughput(matmul_sizes or default_matmul, where, dtype, repeats)
    elementwise = elementwise_bandwidth(elementwise_sizes or default_elementwise, where, dtype, repeats)
    return Roofline(max(matmul.values()), elementwise[max(elementwise)], matmul, elementwise)


def copy_bandwidth(nbytes, where, repeats=5):
    """Bytes/s of host-to-device copies of ``nbytes`` from pageable and from pinned (page-locked) memory.

    Needs a CUDA device (on the CPU there is no copy to make). Returns
    ``{"pageable": bytes/s, "pinned": bytes/s}``.
    """
    where = torch.device(where)
    if where.type != "cuda":
        raise ValueError(f"copy_bandwidth needs a CUDA device, got {where}")
    numel = int(nbytes) // 4
    sources = {"pageable": torch.ones(numel), "pinned": torch.ones(numel).pin_memory()}
    functions = {kind: (lambda host=host: host.to(where, non_blocking=True)) for kind, host in sources.items()}
    seconds = time_medians(functions, where, repeats)
    return {kind: numel * 4 / seconds[kind] for kind in sources}


def forward_backward(model, inputs, targets, precision=None):
    """One forward and backward pass of the mean cross-entropy of ``model`` (gradients accumulate in ``.grad``).

    With ``precision`` (``torch.bfloat16`` or ``torch.float16``) the forward pass runs
    under ``torch.autocast``: matrix products in that precision, reductions and the loss
    in float32; the weights and their gradients stay float32. Returns the loss.
    """
    model.zero_grad(set_to_none=True)
    with torch.autocast(inputs.device.type, dtype=precision, enabled=precision is not None):
        loss = torch.nn.functional.cross_entropy(model(inputs), targets)
    loss.backward()
    return loss


def precision_times(where, size=512, sizes=(64, 512, 512, 10), batch=256, repeats=5):
    """Median seconds of the same work in float32 and in bfloat16 on ``where``, timed in turns.

    The work: the product ``A @ B`` of two ``size x size`` matrices stored in each
    dtype; the same with ``B`` transposed, ``A @ B.T`` (a view, as a linear layer
    multiplies by ``W.T``); and one forward and backward pass of ``train.mlp(sizes)``
    on a batch of ``batch`` (in float32, and under bfloat16 autocast). Returns
    ``{"matrix product": {"float32": s, "bfloat16": s}, "product with B.T": {...},
    "network step": {...}}``.
    """
    generator = torch.Generator().manual_seed(0)
    matrix = torch.randn(size, size, generator=generator).to(where)
    other = torch.randn(size, size, generator=generator).to(where)
    low, other_low = matrix.bfloat16(), other.bfloat16()
    model = train.mlp(sizes, seed=0).to(where)
    inputs = torch.randn(batch, sizes[0], generator=generator).to(where)
    targets = torch.randint(0, sizes[-1], (batch,), generator=generator).to(where)
    functions = {
        ("matrix product", "float32"): lambda: matrix @ other,
        ("matrix product", "bfloat16"): lambda: low @ other_low,
        ("product with B.T", "float32"): lambda: matrix @ other.T,
        ("product with B.T", "bfloat16"): lambda: low @ other_low.T,
        ("network step", "float32"): lambda: forward_backward(model, inputs, targets),
        ("network step", "bfloat16"): lambda: forward_backward(model, inputs, targets, torch.bfloat16),
    }
    seconds = time_medians(functions, where, repeats)
    table = {}
    for (work, precision), value in seconds.items():
        table.setdefault(work, {})[precision] = value
    return table


_LIMITED_RUN = """
import json, sys, torch
torch.set_num_threads(1)
from nnopt import gpu
print("RESULT " + json.dumps(gpu.precision_times("cpu", **json.loads(sys.argv[1]))))
"""


def _bf16_kernel(output):
    """The oneDNN implementation that ran a bfloat16 matrix product, from ``ONEDNN_VERBOSE`` lines."""
    for line in output.splitlines():
        fields = line.split(",")
        if line.startswith("onednn_verbose") and "exec" in fields and "matmul" in fields and "src:bf16" in line:
            return fields[fields.index("matmul") + 1]
    return None


# Below AVX-512, the limits of PyTorch's own kernels and of MKL (which runs the float32 products)
_AVX2_ELSEWHERE = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def cpu_precision_times(instruction_sets, size=512, batch=256):
    """:func:`precision_times` on the CPU (one thread, ``size`` and ``batch`` as there), in one fresh
    process per instruction set.

    In each process oneDNN, the library that runs PyTorch's bfloat16 matrix products
    on the CPU, may use at most the instructions of its set (``ONEDNN_MAX_CPU_ISA``:
    ``"AVX2"``, ``"AVX512_CORE"``, ``"AVX512_CORE_BF16"``, ...; ``None`` for all
    of this CPU's): the same chip then runs bfloat16 as an older one would. For a set
    below AVX-512, PyTorch's own kernels and MKL are limited to AVX2 as well
    (``ATEN_CPU_CAPABILITY``, ``MKL_ENABLE_INSTRUCTIONS``). The processes run at once;
    the times are CPU times of their one thread. Returns
    ``{instruction set: (times, kernel)}``, ``kernel`` naming the oneDNN implementation
    of the bfloat16 product, or None where oneDNN declined it (PyTorch's own loop ran).
    """
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    running = {}
    for instruction_set in instruction_sets:
        environment = dict(os.environ, ONEDNN_VERBOSE="1", OMP_NUM_THREADS="1")
        environment["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, environment.get("PYTHONPATH")]))
        if instruction_set is not None:
            environment["ONEDNN_MAX_CPU_ISA"] = instruction_set
            if not instruction_set.upper().startswith("AVX512"):
                environment.update(_AVX2_ELSEWHERE)
        command = [sys.executable, "-c", _LIMITED_RUN, json.dumps({"size": size, "batch": batch})]
        running[instruction_set] = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = {}
    for instruction_set, process in running.items():
        output, errors = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"the run limited to {instruction_set} failed:\n{errors[-2000:]}")
        result = next(line for line in output.splitlines() if line.startswith("RESULT "))
        results[instruction_set] = (json.loads(result[len("RESULT "):]), _bf16_kernel(output))
    return results


def gradients(model, inputs, targets):
    """The gradient of the mean cross-entropy of ``model`` on a batch, one float64 array per parameter."""
    forward_backward(model, inputs, targets)
    return [parameter.grad.detach().double().numpy().copy() for parameter in model.parameters()]


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _data_parallel_worker(rank, workers, port, sizes, seed, inputs, targets, results):
    """One worker of :func:`data_parallel_gradients` (runs in its own process)."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=workers)
    try:
        model = train.mlp(sizes, seed=seed)  # every worker starts from the same weights
        shard = slice(rank * len(targets) // workers, (rank + 1) * len(targets) // workers)
        forward_backward(model, inputs[shard], targets[shard])
        for parameter in model.parameters():  # the mean of the workers' gradients
            dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
            parameter.grad /= workers
        results.put((rank, [parameter.grad.double().numpy().copy() for parameter in model.parameters()]))
    finally:
        dist.destroy_process_group()


def data_parallel_gradients(sizes, inputs, targets, workers=2, seed=0):
    """One data-parallel step: ``workers`` processes, each with a copy of ``train.mlp(sizes, seed)``.

    The batch (``inputs``, a float32 tensor, and integer ``targets``) is cut into
    ``workers`` equal shards; each process computes the gradient of the mean
    cross-entropy on its shard, and ``torch.distributed.all_reduce`` (Gloo, on the CPU)
    sums the gradients, which each worker divides by ``workers``, as
    ``torch.nn.parallel.DistributedDataParallel`` does. With equal shards this is the
    gradient of the whole batch. Returns one list of float64 arrays per worker, in
    rank order.
    """
    workers = int(workers)
    if workers < 1 or len(targets) % workers:
        raise ValueError(f"the batch of {len(targets)} must split into {workers} equal shards")
    context = torch.multiprocessing.get_context("spawn")
    results = context.SimpleQueue()
    arguments = (workers, _free_port(), tuple(sizes), seed, inputs, targets, results)
    torch.multiprocessing.spawn(_data_parallel_worker, args=arguments, nprocs=workers, join=True)
    received = dict(results.get() for _ in range(workers))
    return [received[rank] for rank in range(workers)]

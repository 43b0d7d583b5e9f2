"""Chapter 5 reference: pruning masks against torch.nn.utils.prune, the L1 proximal step against
softshrink, CSR sizes against scipy.sparse, and the torch helpers against torch.nn.utils.prune."""

import copy
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse
import torch
from torch.nn.utils import prune as torch_prune

from nnopt import _topk, prune, train

from conftest import REPO

SHAPES = [(1,), (7,), (5, 6), (3, 4, 5), (4, 3, 3, 3)]
SPARSITIES = [0.0, 0.1, 0.29, 0.5, 0.55, 0.7, 0.93, 1.0]


def torch_mask(method, w, **arguments):
    """The bool mask that a torch.nn.utils.prune method computes for the float64 array ``w``."""
    tensor = torch.tensor(w)
    return method(**arguments).compute_mask(tensor, torch.ones_like(tensor)).numpy().astype(bool)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("sparsity", SPARSITIES)
def test_magnitude_mask_equals_l1_unstructured(shape, sparsity):
    rng = np.random.default_rng(hash((shape, sparsity)) % 2**32)
    for _ in range(5):
        w = rng.normal(size=shape) * 10 ** rng.uniform(-3, 3)
        expected = torch_mask(torch_prune.L1Unstructured, w, amount=sparsity)
        mask = prune.magnitude_mask(w, sparsity)
        assert mask.dtype == bool and mask.shape == w.shape
        np.testing.assert_array_equal(mask, expected)


def test_magnitude_mask_rounds_the_count_like_torch():
    for n in range(1, 60):
        for sparsity in (0.05, 0.15, 0.25, 0.29, 0.35, 0.45, 0.5, 0.65, 0.75, 0.85):
            w = np.random.default_rng(n).normal(size=n)
            expected = torch_mask(torch_prune.L1Unstructured, w, amount=sparsity)
            assert (~prune.magnitude_mask(w, sparsity)).sum() == (~expected).sum() == round(sparsity * n)


def tied_values(rng, n):
    """``n`` values with many ties: a few levels, or rounded normals, some of them NaN."""
    kind = int(rng.integers(0, 4))
    if kind == 0:
        return np.abs(rng.integers(-3, 4, size=n) * 0.5)
    if kind == 1:
        return rng.integers(0, int(rng.integers(1, 50)), size=n).astype(float)
    if kind == 2:
        return np.round(rng.normal(size=n), 1)
    return np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 5, size=n).astype(float))


def test_topk_replay_picks_what_torch_topk_picks_among_ties():
    """3,000 random tie patterns, both of torch's paths (nth_element, and the heap when 64 k <= n)."""
    rng = np.random.default_rng(0)
    for case in range(3000):
        n = int(rng.integers(1, 60 if case % 3 == 0 else 3000))
        k = int(rng.integers(0, n + 1 if case % 4 else n // 64 + 1))
        values, largest = tied_values(rng, n), bool(case % 2)
        expected = torch.topk(torch.tensor(values), k, largest=largest).indices.numpy()
        chosen = (_topk.largest if largest else _topk.smallest)(values, k)
        assert sorted(chosen.tolist()) == sorted(expected.tolist()), (case, n, k, largest)


def test_topk_replay_falls_back_to_a_heap_as_libstdcxx_does(monkeypatch):
    """An input built against median-of-3 pivots (McIlroy's adversary) exhausts introselect's depth limit."""
    high = [64.0] * 20
    values = np.array(
        [64.0, 1, 64, 3, 64, 5, 64, 7, 64, 9, 64, 11, 64, 13, 64, 15, 64, 17, 64, 19, 64, 21, 64, 23, 28, 27, 24, 25, 26, 29]
        + [64.0, 64, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22] + high
    )
    heaps = []
    select = _topk._heap_select
    monkeypatch.setattr(_topk, "_heap_select", lambda items, middle: heaps.append(middle) or select(items, middle))
    chosen = _topk.smallest(values, 30)  # 64 * 30 > 64: introselect, not the heap of the k smallest
    assert heaps, "the depth limit was not reached"
    expected = torch.topk(torch.tensor(values), 30, largest=False).indices.numpy()
    assert sorted(chosen.tolist()) == sorted(expected.tolist())


def test_magnitude_mask_on_ties_equals_l1_unstructured():
    rng = np.random.default_rng(1)
    for _ in range(1000):
        w = rng.integers(-3, 4, size=int(rng.integers(2, 400))) * 0.5
        sparsity = float(rng.uniform(0, 1))
        expected = torch_mask(torch_prune.L1Unstructured, w, amount=sparsity)
        np.testing.assert_array_equal(prune.magnitude_mask(w, sparsity), expected)


def test_masks_on_ties_are_not_first_or_last_index_first():
    """The replay is needed: on these ties torch removes neither the first nor the last equal entries."""
    w = np.array([0.0, 0.0, 1.0, 1.0, 0.0, -1.0, 1.0, 1.0, -1.0, 0.0])  # remove 5: the 4 zeros and one of six 1s
    expected = torch_mask(torch_prune.L1Unstructured, w, amount=0.5)
    np.testing.assert_array_equal(expected, [False, False, True, True, False, True, True, False, True, False])
    np.testing.assert_array_equal(prune.magnitude_mask(w, 0.5), expected)


@pytest.mark.parametrize(
    "shape,dim", [((6, 5), 0), ((6, 5), 1), ((6, 5), -1), ((4, 5, 6), 2), ((4, 5, 6), -2), ((8, 3, 3, 3), 0), ((8, 3, 3, 3), 1)]
)
@pytest.mark.parametrize("sparsity", SPARSITIES)
def test_channel_mask_equals_ln_structured(shape, dim, sparsity):
    rng = np.random.default_rng(hash((shape, dim, sparsity)) % 2**32)
    for _ in range(5):
        w = rng.normal(size=shape) * rng.uniform(0.1, 2, size=[shape[i] if i == dim % len(shape) else 1 for i in range(len(shape))])
        expected = torch_mask(torch_prune.LnStructured, w, amount=sparsity, n=2, dim=dim)
        np.testing.assert_array_equal(prune.channel_mask(w, sparsity, dim=dim), expected)


def test_channel_mask_on_ties_equals_ln_structured():
    rng = np.random.default_rng(2)
    for _ in range(500):
        rows = rng.integers(0, 2, size=(3, 2, 2)).astype(float)
        dim = int(rng.integers(0, 3))
        w = np.moveaxis(rows[rng.integers(0, 3, size=int(rng.integers(2, 200)))], 0, dim)  # 3 different slices
        sparsity = float(rng.uniform(0, 1))
        expected = torch_mask(torch_prune.LnStructured, w, amount=sparsity, n=2, dim=dim)
        np.testing.assert_array_equal(prune.channel_mask(w, sparsity, dim=dim), expected)


def test_channel_norms_are_l2_over_the_other_axes():
    w = np.random.default_rng(0).normal(size=(3, 4, 5))
    np.testing.assert_allclose(prune.channel_norms(w, dim=1), torch.linalg.vector_norm(torch.tensor(w), dim=(0, 2)).numpy())


def test_soft_threshold_equals_softshrink():
    rng = np.random.default_rng(1)
    for shape in SHAPES:
        w = rng.normal(size=shape)
        for threshold in (0.0, 0.1, 0.7, 5.0):
            expected = torch.nn.functional.softshrink(torch.tensor(w), threshold).numpy()
            np.testing.assert_allclose(prune.soft_threshold(w, threshold), expected, rtol=0, atol=1e-15)
    assert np.count_nonzero(prune.soft_threshold(np.array([-0.3, 0.1, 0.2, 0.9]), 0.25)) == 2


def test_gradual_sparsity_is_the_cubic_of_zhu_and_gupta():
    final, initial, begin, end = 0.9, 0.1, 10, 50
    assert prune.gradual_sparsity(0, begin, end, final, initial) == pytest.approx(initial)
    assert prune.gradual_sparsity(begin, begin, end, final, initial) == pytest.approx(initial)
    assert prune.gradual_sparsity(end, begin, end, final, initial) == pytest.approx(final)
    assert prune.gradual_sparsity(500, begin, end, final, initial) == pytest.approx(final)
    assert prune.gradual_sparsity(30, begin, end, final, initial) == pytest.approx(final + (initial - final) / 8)
    path = [prune.gradual_sparsity(t, begin, end, final, initial) for t in range(begin, end + 1)]
    steps = np.diff(path)
    assert np.all(steps > 0) and np.all(np.diff(steps) < 0)  # rising, ever more slowly


@pytest.mark.parametrize("value_dtype,index_dtype", [("float32", "int32"), ("float32", "int16"), ("float64", "int64"), (np.float32, np.int16)])
def test_csr_bytes_equals_scipy(value_dtype, index_dtype):
    rng = np.random.default_rng(2)
    for shape in [(1, 1), (1, 9), (9, 1), (30, 20), (300, 64)]:
        for density in (0.0, 0.05, 0.5, 1.0):
            w = rng.normal(size=shape) * (rng.random(shape) < density)
            matrix = scipy.sparse.csr_array(w.astype(value_dtype))
            expected = matrix.data.nbytes + matrix.indices.astype(index_dtype).nbytes + matrix.indptr.astype(index_dtype).nbytes
            assert prune.csr_bytes(w, value_dtype, index_dtype) == expected


def test_csr_bytes_refuses_indices_that_overflow():
    with pytest.raises(ValueError, match="index_dtype int16 cannot hold"):
        prune.csr_bytes(np.ones((2, 40_000)), index_dtype="int16")
    with pytest.raises(ValueError, match="index_dtype int16 cannot hold"):
        prune.csr_bytes(np.ones((300, 200)), index_dtype="int16")  # nnz 60,000 in the row pointers


@pytest.mark.parametrize("index_dtype", ["int32", "int16", "int64"])
def test_break_even_sparsity_is_where_csr_gets_smaller(index_dtype):
    rows, columns = 100, 300
    break_even = prune.break_even_sparsity((rows, columns), "float32", index_dtype)
    dense = rows * columns * 4
    for sparsity, smaller in [(break_even - 0.003, False), (break_even + 0.003, True)]:
        w = np.zeros(rows * columns)
        w[: round((1 - sparsity) * w.size)] = 1.0
        assert (prune.csr_bytes(w.reshape(rows, columns), "float32", index_dtype) < dense) == smaller
    assert prune.break_even_sparsity((300, 64), "float32", "int16") == pytest.approx(1 / 3, abs=0.01)


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: prune.magnitude_mask(np.ones(3), 1.2), "sparsity must be in"),
        (lambda: prune.magnitude_mask(np.ones(3), -0.1), "sparsity must be in"),
        (lambda: prune.magnitude_mask(np.ones(3), float("nan")), "sparsity must be a finite"),
        (lambda: prune.channel_mask(np.ones((3, 2)), 1.5), "sparsity must be in"),
        (lambda: prune.channel_mask(np.ones(3), 0.5), "w must have at least 2 dimensions"),
        (lambda: prune.channel_mask(np.ones((3, 2)), 0.5, dim=2), "dim must be in"),
        (lambda: prune.channel_mask(np.ones((3, 2)), 0.5, dim=-3), "dim must be at least"),
        (lambda: prune.soft_threshold(np.ones(3), -1.0), "threshold must be in"),
        (lambda: prune.gradual_sparsity(3, 5, 5, 0.9), "end_step must be at least"),
        (lambda: prune.gradual_sparsity(3, 0, 5, 1.1), "final_sparsity must be in"),
        (lambda: prune.gradual_sparsity(3, 0, 5, 0.9, initial_sparsity=-0.2), "initial_sparsity must be in"),
        (lambda: prune.csr_bytes(np.ones(3)), "weights must be a 2-D matrix"),
        (lambda: prune.csr_bytes(np.ones((2, 2)), index_dtype="float32"), "index_dtype must be an integer dtype"),
        (lambda: prune.csr_bytes(np.ones((2, 2)), value_dtype="no such type"), "value_dtype must be a NumPy dtype"),
        (lambda: prune.break_even_sparsity((3,)), "shape must be"),
        (lambda: prune.global_magnitude_masks({"a": np.ones(2)}, 2.0), "sparsity must be in"),
        (lambda: prune.remove_hidden_units(train.mlp((4, 3, 2)), 1.01), "sparsity must be in"),
        (lambda: prune.prune_by_magnitude(train.mlp((4, 3, 2)), 0.5, scope="row"), "scope must be"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_references_are_pure():
    rng = np.random.default_rng(3)
    w = rng.normal(size=(6, 4))
    before = w.copy()
    results = [prune.magnitude_mask(w, 0.5), prune.channel_mask(w, 0.5, dim=1), prune.soft_threshold(w, 0.3)]
    prune.csr_bytes(w)
    np.testing.assert_array_equal(w, before)
    for result in results:
        assert not np.shares_memory(result, w) and result.flags.writeable


def test_importing_the_references_does_not_import_torch():
    code = "import sys, nnopt.prune, nnopt.exercises; assert 'torch' not in sys.modules, 'torch was imported'"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --- the torch helpers ---------------------------------------------------------------------------

SIZES = (12, 20, 16, 5)


def data(seed, n=64):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, SIZES[0], generator=generator), torch.randint(0, SIZES[-1], (n,), generator=generator)


def train_steps(model, optimizer, steps, seed=0):
    for step in range(steps):
        x, y = data(seed + step, n=16)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


def linear_layers(model):
    return [module for module in model if isinstance(module, torch.nn.Linear)]


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_masks_stay_applied_while_fine_tuning_like_torch_prune(scope):
    ours, theirs = train.mlp(SIZES, seed=4), train.mlp(SIZES, seed=4)
    masks = prune.prune_by_magnitude(ours, 0.6, scope=scope)
    if scope == "layer":
        for module in linear_layers(theirs):
            torch_prune.l1_unstructured(module, "weight", amount=0.6)
    else:
        parameters = [(module, "weight") for module in linear_layers(theirs)]
        torch_prune.global_unstructured(parameters, pruning_method=torch_prune.L1Unstructured, amount=0.6)
    for (name, weight), module in zip(prune.effective_weights(ours).items(), linear_layers(theirs)):
        np.testing.assert_array_equal(weight, module.weight.detach().double().numpy())
        np.testing.assert_array_equal(masks[name], module.weight_mask.numpy().astype(bool))
    for model in (ours, theirs):
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
        train_steps(model, optimizer, 20)
    x, _ = data(99)
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)
    for name, weight in prune.effective_weights(ours).items():
        assert np.all(weight[~masks[name]] == 0) and np.all(weight[masks[name]] != 0)


def test_pruning_again_prunes_on_like_torch_with_counts():
    ours, theirs = train.mlp(SIZES, seed=5), train.mlp(SIZES, seed=5)
    levels = [0.5, 0.8, 0.9]
    previous = {module: 0 for module in linear_layers(theirs)}
    for level in levels:
        prune.prune_by_magnitude(ours, level, scope="layer")
        for module in linear_layers(theirs):
            total = round(level * module.weight.numel())
            torch_prune.l1_unstructured(module, "weight", amount=total - previous[module])  # an int: a count of the rest
            previous[module] = total
        for model in (ours, theirs):
            train_steps(model, torch.optim.SGD(model.parameters(), lr=0.05), 5, seed=int(level * 100))
        for weight, module in zip(prune.effective_weights(ours).values(), linear_layers(theirs)):
            np.testing.assert_array_equal(weight, (module.weight_orig * module.weight_mask).detach().double().numpy())
            assert np.count_nonzero(weight) == weight.size - round(level * weight.size)


def test_make_masks_permanent_equals_torch_remove():
    ours, theirs = train.mlp(SIZES, seed=6), train.mlp(SIZES, seed=6)
    prune.prune_by_magnitude(ours, 0.7, scope="layer")
    for module in linear_layers(theirs):
        torch_prune.l1_unstructured(module, "weight", amount=0.7)
        torch_prune.remove(module, "weight")
    prune.make_masks_permanent(ours)
    assert sorted(name for name, _ in ours.named_parameters()) == sorted(name for name, _ in theirs.named_parameters())
    for a, b in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_apply_masks_checks_names_and_shapes():
    model = train.mlp(SIZES)
    with pytest.raises(ValueError, match="not a prunable layer"):
        prune.apply_masks(model, {"7": np.ones((3, 3), bool)})
    with pytest.raises(ValueError, match="must be a bool array of shape"):
        prune.apply_masks(model, {"0": np.ones((3, 3), bool)})


def test_proximal_l1_is_an_sgd_step_then_softshrink():
    ours, theirs = train.mlp(SIZES, seed=7), train.mlp(SIZES, seed=7)
    strength, lr = 0.05, 0.1
    optimizer = prune.ProximalL1(torch.optim.SGD(ours.parameters(), lr=lr), prune.layer_weights(ours), strength)
    plain = torch.optim.SGD(theirs.parameters(), lr=lr)
    for step in range(10):
        train_steps(ours, optimizer, 1, seed=step)
        train_steps(theirs, plain, 1, seed=step)
        with torch.no_grad():
            for module in linear_layers(theirs):
                module.weight.copy_(torch.nn.functional.softshrink(module.weight, lr * strength))
    for a, b in zip(ours.parameters(), theirs.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    weights = prune.effective_weights(ours)
    assert sum(np.count_nonzero(w == 0) for w in weights.values()) > 0  # exact zeros
    biases = [module.bias for module in linear_layers(ours)]
    assert all(torch.count_nonzero(bias) == bias.numel() for bias in biases)  # biases are not penalised


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.8])
def test_remove_hidden_units_computes_what_ln_structured_computes(sparsity):
    model = train.mlp(SIZES, seed=8)
    with torch.no_grad():
        linear_layers(model)[0].bias.add_(0.5)  # removed units then pass a non-zero constant through the ReLU
    reference = copy.deepcopy(model)
    for module in linear_layers(reference)[:-1]:
        torch_prune.ln_structured(module, "weight", amount=sparsity, n=2, dim=0)
    smaller = prune.remove_hidden_units(model, sparsity)
    widths = [module.out_features for module in linear_layers(smaller)]
    assert widths == [SIZES[1] - round(sparsity * SIZES[1]), SIZES[2] - round(sparsity * SIZES[2]), SIZES[3]]
    x, _ = data(10)
    torch.testing.assert_close(smaller(x), reference(x), rtol=1e-5, atol=1e-6)
    assert [p.shape for p in model.parameters()] == [p.shape for p in train.mlp(SIZES).parameters()]  # unchanged


def test_csr_forward_equals_the_masked_model_without_warnings():
    model = train.mlp(SIZES, seed=9)
    prune.prune_by_magnitude(model, 0.85)
    x, _ = data(11)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        forward = prune.csr_forward(model)
        with torch.no_grad():
            torch.testing.assert_close(forward(x), model(x), rtol=1e-5, atol=1e-6)


def test_helpers_use_the_mask_function_they_are_given():
    calls = []

    def recording(function):
        def wrapped(*args, **kwargs):
            calls.append(function.__name__)
            return function(*args, **kwargs)

        return wrapped

    model = train.mlp(SIZES, seed=12)
    prune.prune_by_magnitude(model, 0.5, mask_function=recording(prune.magnitude_mask))
    prune.prune_by_magnitude(model, 0.6, scope="layer", mask_function=recording(prune.magnitude_mask))
    prune.remove_hidden_units(train.mlp(SIZES), 0.5, mask_function=recording(prune.channel_mask))
    assert calls == ["magnitude_mask"] * 4 + ["channel_mask"] * 2

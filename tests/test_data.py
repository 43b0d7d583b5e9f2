"""nnopt.data: seeded, disjoint train/validation/test splits; mnist1d generated offline without side effects."""

import random

import numpy as np
import pytest

from nnopt import data


@pytest.mark.parametrize("make", [data.digits, data.mnist1d])
def test_splits_are_seeded_disjoint_and_complete(make):
    split = make(val_fraction=0.2, test_fraction=0.2, seed=3)
    again, other = make(val_fraction=0.2, test_fraction=0.2, seed=3), make(val_fraction=0.2, test_fraction=0.2, seed=4)
    assert np.array_equal(split.X_val, again.X_val) and not np.array_equal(split.X_val, other.X_val)
    rows = {part: {row.tobytes() for row in getattr(split, f"X_{part}")} for part in ("train", "val", "test")}
    assert not rows["train"] & rows["val"] and not rows["train"] & rows["test"] and not rows["val"] & rows["test"]
    total = len(split.y_train) + len(split.y_val) + len(split.y_test)
    assert len(split.y_val) == round(0.2 * total) == len(split.y_test)
    assert split.classes == 10 and split.X_train.dtype == np.float64 and split.y_train.dtype == np.int64
    assert "training" in split.sizes()


def test_mnist1d_is_standardized_and_leaves_the_global_generators_alone():
    random.seed(7)
    np.random.seed(7)
    expected = (random.random(), np.random.random())
    random.seed(7)
    np.random.seed(7)
    data._mnist1d_arrays.cache_clear()
    split = data.mnist1d(seed=0)
    assert (random.random(), np.random.random()) == expected
    assert split.X_train.shape[1] == 40
    assert abs(split.X_train.mean()) < 1e-9 and split.X_train.std() == pytest.approx(1.0)


@pytest.mark.parametrize("kwargs,message", [({"val_fraction": -0.1}, "val_fraction"), ({"test_fraction": 1.0}, "test_fraction"),
                                            ({"val_fraction": 0.5, "test_fraction": 0.5}, "leave training data")])
def test_bad_fractions_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        data.digits(**kwargs)

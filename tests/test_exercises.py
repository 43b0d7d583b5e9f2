"""The exercise registry: references pass, every known mistake fails with its diagnosis,
the notebooks agree with the registry, and plain data is all that crosses the boundary."""

import io
import json
import pickle

import numpy as np
import pytest

from autograde import course
from nnopt.exercises import EXERCISES, CheckFailed, check, evaluate, exercises_of, or_reference, wire
from nnopt.exercises import core

from nnopt.exercises import EXERCISES, CheckFailed, check, evaluate, exercises_of, or_reference, program, wire
from nnopt.exercises.core import run_locally

MISTAKES = [(exercise, mistake) for exercise in EXERCISES.values() for mistake in exercise.mistakes]


def verdict_for(exercise, function, seed):
    calls = exercise.cases(np.random.default_rng(seed))
    return evaluate(exercise, calls, run_locally(exercise, function, calls))


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_reference_passes_on_many_seeds(name):
    exercise = EXERCISES[name]
    for seed in range(25):
        verdict = verdict_for(exercise, exercise.reference, seed)
        assert verdict.passed, verdict.reason


@pytest.mark.parametrize("exercise,mistake", MISTAKES, ids=[f"{e.name}-{m.name}" for e, m in MISTAKES])
def test_every_known_mistake_fails_with_its_diagnosis(exercise, mistake):
    assert mistake.expected_phrase, "a mistake must say what the verdict will contain"
    for seed in range(12):
        verdict = verdict_for(exercise, mistake.function(exercise.name), seed)
        assert not verdict.passed
        assert mistake.expected_phrase in "\n".join([verdict.reason, *verdict.details]), verdict.reason


def test_each_exercise_has_a_known_mistake():
    assert all(exercise.mistakes for exercise in EXERCISES.values())


def test_visible_check_says_what_is_wrong():
    exercise = EXERCISES["gd_step"]
    wrong = exercise.mistakes[0].function("gd_step")
    with pytest.raises(CheckFailed, match=exercise.mistakes[0].diagnosis.split(":")[0]):
        check(wrong)

    def gd_step(theta, grad, lr):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not implemented yet"):
        check(gd_step)


def test_an_attribute_named_like_a_course_variable_is_not_a_use_of_it():
    """`chunk.nbytes` reads an attribute, not a course cell's `nbytes`, nor the nnopt module `cost`."""
    import nnopt.cost

    namespace = {"np": np, "cost": nnopt.cost, "nbytes": 8}
    exec(
        "def ring_allreduce(arrays):\n    return arrays.cost, [chunk.nbytes for chunk in arrays]\n\n"
        "def uses_it(arrays):\n    return cost.ring_allreduce(arrays)\n",
        namespace,
    )
    exercise = EXERCISES["ring_allreduce"]
    assert program.grading_problems(exercise, namespace["ring_allreduce"]) == []
    assert program.grading_problems(exercise, namespace["uses_it"]) == [program.uses_nnopt("ring_allreduce")]

def test_an_answer_calling_an_unfinished_function_is_told_which():
    namespace = {"np": np}
    cells = (
        "def gd_step(theta, grad, lr):\n    return theta - lr * scaled(grad)\n",
        "def scaled(grad):\n    raise NotImplementedError()\n",
    )
    for number, source in enumerate(cells):
        exec(compile(source, f"<cell {number}>", "exec"), namespace)
    with pytest.raises(CheckFailed, match="gd_step calls scaled, which is not implemented yet"):
        check(namespace["gd_step"])


def test_the_names_a_graded_function_reads_are_its_globals_and_imports():
    from nnopt.exercises import program

    def answer(x):
        from nnopt import cnn  # binds a local `cnn`

        return cnn.max_pool2d(np.asarray(x).flat)  # `max_pool2d`, `asarray`, `flat`: attributes

    assert program._code_names(answer.__code__) == {"nnopt", "np"}


def test_or_reference_falls_back_and_says_so(capsys):
    def gd_step(theta, grad, lr):
        raise NotImplementedError()

    stand_in = or_reference(gd_step)
    np.testing.assert_array_equal(stand_in(np.ones(2), np.ones(2), 0.5), [0.5, 0.5])
    stand_in(np.ones(2), np.ones(2), 0.5)
    assert capsys.readouterr().out.count("not implemented yet") == 1


@pytest.mark.parametrize("chapter", course.chapters())
def test_notebook_agrees_with_registry(chapter):
    notebook = course.load_source(chapter)
    cells = notebook["cells"]
    answers = [course.grading(c)["grade_id"] for c in cells if course.is_answer(c)]
    tests = {course.grading(c)["grade_id"]: c for c in cells if course.is_test(c)}
    names = [exercise.name for exercise in exercises_of(chapter)]
    assert answers == names
    assert sorted(tests) == sorted(f"{name}_tests" for name in names)
    for exercise in exercises_of(chapter):
        cell = tests[f"{exercise.name}_tests"]
        assert course.grading(cell)["points"] == exercise.points
        assert f"check({exercise.name})" in course.visible_part(course.text(cell))
        assert f"hidden_test({exercise.name})" in course.text(cell)
    preludes = [course.text(c) for c in cells if "prelude" in course.tags(c)]
    assert preludes and not any("nnopt" in text for text in preludes), "graded code runs where nnopt does not exist"


def test_wire_round_trip_is_exact():
    values = (np.arange(6.0).reshape(2, 3), np.float32(1.5), 3, True, None, "text", [np.int64(4)])
    decoded = wire.decode(wire.encode(values))
    assert isinstance(decoded, tuple) and len(decoded) == len(values)
    np.testing.assert_array_equal(decoded[0], values[0])
    assert decoded[1].dtype == np.float32 and decoded[2:6] == (3, True, None, "text")


def test_wire_refuses_objects_and_pickles():
    assert wire.encode(np.array([object()]))["t"] == "other"
    class Liar(np.ndarray):
        def __eq__(self, other):
            return True

    assert isinstance(wire.decode(wire.encode(np.zeros(2).view(Liar))), wire.Foreign)
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    forged = {"t": "array", "npy": __import__("base64").b64encode(buffer.getvalue()).decode()}
    with pytest.raises(ValueError):
        wire.decode(forged)
    with pytest.raises(ValueError):
        wire.decode({"t": "float", "v": 1.0, "dtype": "O"})
    with pytest.raises(ValueError):
        wire.decode(json.loads(json.dumps({"t": "pickle", "v": pickle.dumps(1).hex()})))


def test_run_call_records_in_place_changes_and_aliasing():
    theta = np.ones(3)

    def gd_step(theta, grad, lr):
        theta -= lr * grad
        return theta

    result = wire.run_call(gd_step, [theta, np.ones(3), 0.5], {}, ["theta", "grad", "lr"])
    assert result["aliased"] == [["output", "theta"]]
    np.testing.assert_array_equal(wire.decode(result["args_after"][0]), [0.5, 0.5, 0.5])


def test_minibatch_indices_may_return_a_tuple_but_not_an_array():
    exercise = EXERCISES["minibatch_indices"]

    def as_tuple(n, batch_size, seed):
        return tuple(exercise.reference(n, batch_size, seed))

    assert verdict_for(exercise, as_tuple, 0).passed

    def as_array(n, batch_size, seed):
        return np.random.default_rng(seed).permutation(n)

    verdict = verdict_for(exercise, as_array, 0)
    assert not verdict.passed
    assert "should yield its index arrays, or return them in a list or a tuple, got an array" in verdict.reason

def test_lists_of_arrays_are_compared_item_by_item_and_checked_for_changes():
    exercise = EXERCISES["gd_step"]
    expected = [np.zeros(2), np.ones(3)]
    assert core.compare(exercise, expected, [np.zeros(2), np.ones(3)]) == []
    assert "item 1 of the result is wrong" in core.compare(exercise, expected, [np.zeros(2), np.zeros(3)])[0]
    assert "should be a list of 2" in core.compare(exercise, expected, (np.zeros(2), np.ones(3)))[0]
    assert not core._same_argument([np.zeros(2)], [np.ones(2)])
    assert core._same_argument([np.zeros(2), 1.0], [np.zeros(2), 1.0])


def test_a_number_that_is_nan_matches_only_nan():
    """So that a known mistake whose answer is nan (an overflow) can be recognised in a student's nan."""
    from nnopt.exercises.core import compare

    exercise = EXERCISES["gd_step"]
    assert compare(exercise, float("nan"), float("nan")) == []
    assert compare(exercise, 1.0, float("nan")) and compare(exercise, float("nan"), 1.0)


def test_a_wrong_value_is_shown_with_the_digits_that_tell_it_from_the_expected_one():
    exercise = EXERCISES["gd_step"]
    close_call = core.compare(exercise, np.array([0.217214]), np.array([0.217214 * (1 + 4e-8)]))[0]
    assert "expected 0.217214, got 0.2172140087" in close_call
    assert "expected 0.5, got 0.25" in core.compare(exercise, np.array([0.5]), np.array([0.25]))[0]
    sixth = core.compare(exercise, tuple(np.zeros(1) for _ in range(6)), (*(np.zeros(1) for _ in range(5)), np.ones(1)))
    assert sixth[0].startswith("the sixth returned value is wrong")

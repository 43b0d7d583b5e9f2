"""nnopt.progress: slow loops say how far they are, in a kernel and outside one."""

from nnopt.progress import progress


def test_progress_yields_everything_and_reports_at_the_end(capsys):
    assert list(progress(range(5), "sweep")) == list(range(5))
    assert "sweep: 5/5 done in" in capsys.readouterr().err
    assert list(progress((i for i in range(3)), "runs")) == [0, 1, 2]
    assert "runs: 3 done in" in capsys.readouterr().err

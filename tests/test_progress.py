"""Progress on stderr: a line per step with an estimate of the time left; -q silences it."""

import io

from reportgen.progress import Progress


def test_progress_reports_counts_and_time_left():
    stream = io.StringIO()
    progress = Progress(total_units=6, stream=stream)
    progress.message("vgg19: loading weights")
    progress.advance(2, "vgg19: 2/6 images")
    progress.advance(4, "vgg19: 6/6 images")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "vgg19: loading weights"
    assert lines[1].startswith("[ 33 %] vgg19: 2/6 images") and "s left" in lines[1]
    assert lines[2].startswith("[100 %]") and "~0 s left" in lines[2]


def test_quiet_progress_prints_nothing():
    stream = io.StringIO()
    progress = Progress(total_units=3, quiet=True, stream=stream)
    progress.message("hello")
    progress.advance(3, "done")
    assert stream.getvalue() == ""

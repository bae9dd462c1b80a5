"""Defect 9 (#17): ``--lengths`` with a huge range must be refused by the length limit before the range is built
(it used to build a list of 1e11 ints and report out of memory)."""
import subprocess
import sys

import pytest

from coupling_tui.core.errors import UserError
from coupling_tui.core.options.collapse import MAX_LENGTH, parse_lengths

_CHILD = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
from coupling_tui.core.errors import UserError
from coupling_tui.core.options.collapse import parse_lengths
try:
    parse_lengths(sys.argv[1])
except UserError as e:
    print("USERERROR", e)
    sys.exit(0)
sys.exit(3)
"""


@pytest.mark.parametrize("text", ["1:100000000000:1", "1:100000000000:7", "5,1:99999999999999:2",
                                  "1:100000000000:x1.0001", "100000000000"])
def test_defect9_lengths_huge_range_refused_before_building(text):
    r = subprocess.run([sys.executable, "-c", _CHILD, text], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "USERERROR" in r.stdout and str(MAX_LENGTH) in r.stdout and "--lengths" in r.stdout


@pytest.mark.parametrize("text", [f"1:{MAX_LENGTH + 1}:1", f"{MAX_LENGTH + 1}", f"2:{MAX_LENGTH * 10}:x2"])
def test_defect9_lengths_just_over_limit_names_flag_and_limit(text):
    with pytest.raises(UserError) as e:
        parse_lengths(text)
    assert "--lengths" in str(e.value) and str(MAX_LENGTH) in str(e.value)


def test_defect9_lengths_at_limit_still_accepted():
    assert parse_lengths(f"{MAX_LENGTH - 1}:{MAX_LENGTH}:1") == (MAX_LENGTH - 1, MAX_LENGTH)

"""Each variable's code hash changes when, and only when, what computes it changes."""

from __future__ import annotations

from runtable.context import Pipeline
from runtable.context.codehash import code_hashes

BASE = '''
from damnit_ctx import Variable, Group
import numpy as np

SCALE = 2
DETECTOR = "SPB_DET_AGIPD1M-1"


def helper(x):
    return x * SCALE


class Calibration:
    offset = 1

    def apply(self, x):
        return x + self.offset


@Variable(title="A")
def a(run):
    return helper(1)


@Variable(title="B")
def b(run, x: "var#a"):
    return x + 1


@Variable(title="C", summary="mean")
def c(run):
    return np.arange(3)


@Variable(title="D")
def d(run):
    return Calibration().apply(2)


@Group
class Detector:
    gain: float = 1.0

    @Variable(title="Signal")
    def signal(self, run):
        return self.gain


agipd = Detector(gain=2.0)
'''


def changed(new: str) -> set[str]:
    before = code_hashes(Pipeline.from_str(BASE))
    after = code_hashes(Pipeline.from_str(new))
    return {name for name in before.keys() | after.keys()
            if before.get(name) != after.get(name)}


def test_every_variable_gets_a_short_hash_that_is_the_same_on_every_load() -> None:
    first = code_hashes(Pipeline.from_str(BASE))
    assert set(first) == {"a", "b", "c", "d", "agipd.signal"}
    assert all(len(h) == 16 for h in first.values())
    assert code_hashes(Pipeline.from_str(BASE)) == first


def test_changing_a_variables_function_changes_it_and_its_dependents_only() -> None:
    assert changed(BASE.replace("return helper(1)", "return helper(2)")) == {"a", "b"}
    assert changed(BASE.replace('title="C", summary="mean"', 'title="C", summary="max"')) \
        == {"c"}


def test_helpers_constants_and_classes_of_the_file_count_as_the_variables_code() -> None:
    assert changed(BASE.replace("SCALE = 2", "SCALE = 3")) == {"a", "b"}
    assert changed(BASE.replace("return x * SCALE", "return x * SCALE + 0")) == {"a", "b"}
    assert changed(BASE.replace("offset = 1", "offset = 5")) == {"d"}


def test_a_groups_fields_count_for_its_variables() -> None:
    assert changed(BASE.replace("Detector(gain=2.0)", "Detector(gain=3.0)")) \
        == {"agipd.signal"}


def test_adding_a_variable_or_moving_code_changes_no_other_hash() -> None:
    added = BASE + '\n\n@Variable\ndef e(run):\n    return 5\n'
    assert changed(added) == {"e"}
    assert changed("# a comment on top\n\n" + BASE) == set()


def test_a_pipeline_built_in_code_has_no_hashes() -> None:
    from runtable.context import Variable

    @Variable
    def f(run):
        return 1

    assert code_hashes(Pipeline().add(f)) == {}

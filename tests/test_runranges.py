"""Run ranges (``"3,5-7"``): one parser for the CLI, ``POST /api/reprocess`` and
``GET /api/table?runs=``, and its way back for messages."""

from __future__ import annotations

import pytest

from runtable.runranges import MAX_EXPANDED, RunRangeError, compress_runs, parse_runs


@pytest.mark.parametrize(("text", "runs"), [
    ("3", {3}), ("3,5-7", {3, 5, 6, 7}), (" 1 , 2-2 ,", {1, 2}), ("4 - 6", {4, 5, 6}),
])
def test_a_text_of_runs_and_ranges_expands_to_its_run_numbers(text, runs) -> None:
    assert parse_runs(text).expand() == runs


def test_run_ranges_select_and_miss_without_expanding() -> None:
    ranges = parse_runs(["1-1000000000000", "5"])
    assert ranges.select([3, 7, 2 * 10**12]) == [3, 7]
    assert str(ranges.missing([3, 7])) == "1-2, 4-6, 8-1000000000000"
    assert str(parse_runs(["9,3-5", "4-6"])) == "3-6, 9"


def test_all_is_a_word_only_where_it_is_allowed_and_only_alone() -> None:
    assert parse_runs(["ALL"], allow_all=True) == "all"
    with pytest.raises(RunRangeError, match="'all' cannot be combined with run numbers"):
        parse_runs(["all", "3"], allow_all=True)
    with pytest.raises(RunRangeError, match=r"'all' is not a run number or range like 3-7$"):
        parse_runs("all")


@pytest.mark.parametrize(("specs", "message"), [
    (["abc"], "'abc' is not a run number or range like 3-7"),
    (["5-3"], "Range '5-3' goes backwards: write it as 3-5"),
    ([" , "], "No runs given: name run numbers"),
])
def test_each_mistake_has_one_message_that_says_what_to_write(specs, message) -> None:
    with pytest.raises(RunRangeError, match=message):
        parse_runs(specs)


def test_expanding_more_runs_than_the_cap_is_refused_without_allocating_them() -> None:
    assert len(parse_runs(f"1-{MAX_EXPANDED}").expand()) == MAX_EXPANDED
    with pytest.raises(RunRangeError, match=f"names more than {MAX_EXPANDED} runs"):
        parse_runs(f"1-{MAX_EXPANDED}, {MAX_EXPANDED + 2}").expand()
    with pytest.raises(RunRangeError, match="more than"):
        parse_runs("1-1000000000000000000").expand()


def test_run_numbers_compress_to_the_ranges_a_person_writes() -> None:
    assert compress_runs([7, 1, 2, 3, 9, 10, 3]) == "1-3, 7, 9-10"
    assert compress_runs([]) == ""
    assert str(parse_runs(compress_runs([7, 1, 2, 3, 9, 10]))) == "1-3, 7, 9-10"

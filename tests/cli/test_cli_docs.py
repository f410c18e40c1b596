"""The generated reference pages (docs/cli.md, docs/settings.md) and the GUI's generated
events.ts stay up to date."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from runtable import docgen
from runtable.cli import build_parser
from runtable.store import SETTINGS

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize("page", sorted(docgen.PAGES))
def test_generated_page_is_up_to_date(page: str) -> None:
    current = (DOCS / page).read_text(encoding="utf-8")
    assert current == docgen.PAGES[page](), (
        f"docs/{page} is out of date; regenerate it with `{docgen.REGENERATE}` at the top "
        "of the checkout")


def test_every_command_and_option_is_documented() -> None:
    text = docgen.cli_markdown()
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert sub.choices, "no subcommands found"
    for name, command in sub.choices.items():
        section = text.split(f"\n## runtable {name}\n", 1)[1].split("\n## ", 1)[0]
        assert f"runtable {name}" in section
        for action in command._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"{option}" in section, (name, option)
            if action.help and not isinstance(action, argparse._HelpAction):
                assert action.help.split()[0] in section, (name, action.dest)


def test_every_setting_is_documented() -> None:
    text = docgen.settings_markdown()
    rows = {line.split("|")[1].strip(): line for line in text.splitlines()
            if line.startswith("| `")}
    assert set(rows) == {f"`{key}`" for key in SETTINGS}
    for key, setting in SETTINGS.items():
        cells = [c.strip() for c in rows[f"`{key}`"].strip("|").split(" | ")]
        assert len(cells) == 4, cells
        assert cells[1] == setting.value_type
        assert cells[2] == ("—" if setting.default is None
                            else setting.default_rule or f"`{setting.default}`")
        assert setting.description.split("(")[0].strip() in cells[3]


def test_settings_read_by_the_jobs_are_known() -> None:
    from runtable.jobs.queue import _SETTING_KEYS

    assert set(_SETTING_KEYS) <= set(SETTINGS)


def test_check_mode_reports_stale_pages(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert docgen.main(["--docs", str(tmp_path), "--check"]) == 1
    assert "regenerate with `python -m runtable.docgen`" in capsys.readouterr().err
    assert docgen.main(["--docs", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(docgen.PAGES)
    assert docgen.main(["--docs", str(tmp_path), "--check"]) == 0
    (tmp_path / "cli.md").write_text("old\n")
    assert docgen.main(["--docs", str(tmp_path), "--check"]) == 1
    assert (tmp_path / "cli.md").read_text() == "old\n"
    assert docgen.main(["--docs", str(tmp_path / "none")]) == 1
    assert "is not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("path", sorted(docgen.FRONTEND_FILES))
def test_generated_frontend_file_is_up_to_date(path: str) -> None:
    current = (DOCS.parent / path).read_text(encoding="utf-8")
    assert current == docgen.FRONTEND_FILES[path](), (
        f"{path} is out of date; regenerate it with `{docgen.REGENERATE}` at the top of the "
        "checkout")


def test_the_generated_event_union_has_every_event_and_field() -> None:
    import dataclasses
    import importlib

    text = docgen.events_typescript()
    union = text.split("export type LiveEvent =", 1)[1]
    for kind, cls in importlib.import_module(docgen.EVENTS_MODULE).EVENT_TYPES.items():
        body = text.split(f"export interface {cls.__name__} {{\n", 1)[1].split("\n}", 1)[0]
        assert f'kind: "{kind}";' in body
        assert {line.split(":")[0].strip() for line in body.splitlines()} == {
            "seq", "kind", *(f.name for f in dataclasses.fields(cls))}
        assert f"| {cls.__name__}" in union

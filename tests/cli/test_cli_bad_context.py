"""Context files that end, hang or are not text at import: `runtable check` and
`runtable reprocess` say so in a sentence and exit 1, never silently or with a
traceback, and never hang (real processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtable.store import create_folder
from runtable.testing import MockProposal

from .cli_helpers import run_cli, stored_values

EXITS = "import os\nfrom damnit_ctx import Variable\nos._exit(0)\n"
LOOPS = "from damnit_ctx import Variable\nwhile True:\n    pass\n"
LATIN1 = "from damnit_ctx import Variable\n# caf\xe9 au lait\n".encode("latin-1")


@pytest.mark.parametrize(("content", "words"), [
    (EXITS, "ended its process without an answer (exit status 0)"),
    (LOOPS, "did not finish within 3 s"),
    (LATIN1, "context.py:2: the file is not UTF-8 text (byte 0xe9); save it as UTF-8"),
], ids=["os._exit", "loop", "not-utf-8"])
def test_check_reports_a_context_that_exits_hangs_or_is_not_text(tmp_path, content, words):
    path = tmp_path / "context.py"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    result = run_cli("check", path, "--timeout", "3", timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert words in " ".join(result.stdout.split()), result.stdout
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize(("content", "words"), [
    (EXITS, "(exit 0)"),
    (LATIN1, "UnicodeDecodeError"),
], ids=["os._exit", "not-utf-8"])
def test_reprocess_reports_a_context_that_exits_or_is_not_text(
        tmp_path: Path, data_root: MockProposal, content, words):
    folder = tmp_path / "amore"
    create_folder(folder, data_root.proposal).close()
    (folder / "context.py").write_bytes(content.encode() if isinstance(content, str)
                                        else content)
    result = run_cli("reprocess", "1", "--in", folder, data_root=data_root.root,
                     timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("Error: the context file"), result.stderr
    assert "cannot be loaded; nothing was processed" in result.stderr
    assert words in result.stderr and "Traceback" not in result.stderr
    assert stored_values(folder) == {}

"""Read a whole run table in a process of its own: ``python -m runtable.store.table_child``.

For a process that writes the database through Python's ``sqlite3`` (the service and
its web server): the fast reader's ADBC driver carries a second copy of SQLite, which
must not open the same file in that process (see ``runtable.store.table.keep_adbc_out``).
The request comes as JSON on stdin; the :class:`~runtable.store.table.TableColumns`
goes back pickled on stdout.
"""

from __future__ import annotations

import json
import pickle
import sys


def main() -> None:
    from runtable.store.table import read_table

    request = json.loads(sys.stdin.buffer.read())
    names = None if request["names"] is None else frozenset(request["names"])
    table = read_table(request["path"], names=names, details=request["details"])
    sys.stdout.buffer.write(pickle.dumps(table, protocol=pickle.HIGHEST_PROTOCOL))


if __name__ == "__main__":
    main()

"""The README's tour, run as written against CORVID_URL, so it cannot rot.

Every fenced ``sh`` block under "## A short tour" runs with bash (``set -euo pipefail``; the
tour's curl calls use ``-f``, so an HTTP error fails the block), and every ``python`` block runs
in this interpreter, which has the official client installed. ``http://127.0.0.1:8080`` is
replaced by CORVID_URL and ``/tmp/corvid-tour.db`` by a temporary file. The tour uses the
database names ``shop`` and ``shipping``, which no other test uses; they are deleted first.
"""

from __future__ import annotations

import io
import json
import os
import re
import sqlite3
import subprocess
import time
import urllib.request
from contextlib import redirect_stdout
from pathlib import Path

from conftest import delete_database_quietly

README = Path(__file__).resolve().parents[2] / "README.md"


def tour_blocks() -> list[tuple[str, str]]:
    text = README.read_text()
    tour = text.split("## A short tour", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(sh|python)\n(.*?)```", tour, flags=re.S)


def wait_for(what: str, check, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def get_json(url: str):
    with urllib.request.urlopen(url) as response:
        return json.load(response)


def test_the_readme_tour_runs(tmp_path, admin_store):
    url = os.environ["CORVID_URL"].rstrip("/")
    # The tour starts from a server without its databases (a rerun against the same server).
    for name in ("shop", "shipping"):
        delete_database_quietly(admin_store, name)
    # SQLite files live in the server's `<data-dir>/sqlite` (docs/security/destinations.md).
    data_dir = Path(os.environ.get("CORVID_DATA_DIR", "corvid-data"))
    sqlite_file = data_dir / "sqlite" / "tour.db"
    blocks = tour_blocks()
    assert [kind for kind, _ in blocks] == ["sh", "sh", "sh", "python"], blocks
    for kind, code in blocks:
        code = code.replace("http://127.0.0.1:8080", url).replace("corvid-data/sqlite/tour.db", str(sqlite_file))
        if kind == "sh":
            result = subprocess.run(
                ["bash", "-c", "set -euo pipefail\n" + code], capture_output=True, text=True, timeout=60
            )
            assert result.returncode == 0, f"{code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
        else:
            printed = io.StringIO()
            with redirect_stdout(printed):
                exec(compile(code, "README.md", "exec"), {})
            assert "Bob" in printed.getvalue(), printed.getvalue()

    # What the tour promises arrived: the Raven ETL copy, and the SQL ETL rows.
    def customer():
        found = get_json(f"{url}/databases/shipping/docs?startsWith=users/1/customers/")["Results"]
        return found and found[0]["Name"] == "Ann Berg"

    wait_for("the reshaped customer", customer)

    def rows():
        with sqlite3.connect(sqlite_file) as connection:
            return connection.execute("SELECT Id, Name, Age FROM People ORDER BY Id").fetchall()

    assert wait_for("the SQL rows", lambda: len(rows()) == 2 and rows()), rows()
    assert rows() == [("users/1", "Ann", 34), ("users/2", "Bob", 41)]

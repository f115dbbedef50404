"""Snowflake's ALTER TABLE ... SWAP WITH on fakesnow, which (DuckDB underneath) has none.

The whole-table outputs are replaced by swapping a staging table in; on fakesnow the swap is
carried out as the three renames it amounts to. Every statement a cursor runs is recorded, so
tests can check what Snowflake would be sent.
"""

import pytest
from fakesnow.cursor import FakeSnowflakeCursor


def emulate_swap(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Patches fakesnow's cursor for the test; returns the list it records statements into."""
    statements: list[str] = []
    execute = FakeSnowflakeCursor.execute

    def recording_execute(self, command, *args, **kwargs):
        statements.append(command)
        words = command.split()
        if words[:2] == ["ALTER", "TABLE"] and words[3:5] == ["SWAP", "WITH"]:
            table, staging = words[2], words[5]
            parked = f"{table}_PARKED"
            for old, new in ((table, parked), (staging, table), (parked, staging)):
                execute(self, f"ALTER TABLE {old} RENAME TO {new}")
            return self
        return execute(self, command, *args, **kwargs)

    monkeypatch.setattr(FakeSnowflakeCursor, "execute", recording_execute)
    return statements

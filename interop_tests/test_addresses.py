"""The shared address table (vectors/addresses.json), Python's half; bridge/address_test.go is Go's."""
import json
from pathlib import Path

import pytest

from gobridge import parse_address

TABLE = json.loads((Path(__file__).parent / "vectors" / "addresses.json").read_text())


@pytest.mark.parametrize("entry", TABLE, ids=[repr(e["address"])[:40] for e in TABLE])
def test_address_table(entry):
    if entry.get("error"):
        with pytest.raises(ValueError):
            parse_address(entry["address"])
    else:
        assert parse_address(entry["address"]) == (entry["scheme"], entry["rest"])

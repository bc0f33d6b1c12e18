"""What README.md promises a new user (issue 12 item 19) holds: how to use
gobridge from another project, which transport to pick, and the lifetime
rule of named objects, shown next to the Queue snippet."""
import os
import re

import gobridge
from gobridge._address import SCHEMES

from shm_support import unique_tag

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme() -> str:
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return f.read()


def test_readme_says_how_to_depend_on_both_halves():
    text = readme()
    with open(os.path.join(ROOT, "go.mod")) as f:
        module = f.readline().split()[1]
    assert f"go get {module}@" in text
    assert "pip install ./python" in text
    with open(os.path.join(ROOT, "python", "pyproject.toml")) as f:
        pyproject = f.read()
    floor = re.search(r'requires-python = ">=(3\.\d+)"', pyproject).group(1)
    msgpack = re.search(r'"msgpack>=([\d.]+)"', pyproject).group(1)
    assert f"Python ({floor} or later" in text, "README's Python floor is not pyproject's"
    assert f"msgpack>={msgpack}" in text, "README's msgpack floor is not pyproject's"


def test_readme_names_every_transport_in_which_transport():
    text = readme()
    section = text[text.index("## Which transport"):]
    section = section[:section.index("\n## ", 1)]
    for scheme in SCHEMES:
        assert f"`{scheme}:" in section, f"{scheme}: is missing from 'Which transport'"


def test_queue_lifetime_rule_as_the_readme_states_it():
    text = readme()
    snippet = text.index('q = gobridge.Queue(2, name="jobs")')
    rule = text.index("A named object lives as long as its handles")
    assert 0 < rule - snippet < 800, "the lifetime rule is not next to the Queue snippet"
    # The rule itself: the last close removes the queue with its messages...
    name = unique_tag("readme")
    q = gobridge.Queue(2, name=name)
    q.put({"job": 1})
    q.close()
    assert not os.path.exists("/dev/shm/" + name)
    q = gobridge.Queue(2, name=name)
    try:
        assert q.empty()
    finally:
        q.close()
    # ... unless it is kept, and then it is removed by hand.
    q = gobridge.Queue(2, name=name, keep=True)
    q.put({"job": 2})
    q.close()
    try:
        q = gobridge.Queue(2, name=name)
        assert q.get(timeout=5) == {"job": 2}
        q.close()
    finally:
        if os.path.exists("/dev/shm/" + name):
            os.unlink("/dev/shm/" + name)

"""Merge the vectors of several interpreters into testdata/vectors.json:
{name: [[distinct hex pickles at protocol 0], ..., [... protocol 5]]}.
Usage: for each python: python testdata/values.py > v-X.json; python merge.py v-*.json"""
import json
import sys

merged = {}
versions = []
for path in sys.argv[1:]:
    data = json.load(open(path))
    versions.append(data["version"])
    for name, hexes in data["vectors"].items():
        slot = merged.setdefault(name, [[] for _ in hexes])
        for p, h in enumerate(hexes):
            if h not in slot[p]:
                slot[p].append(h)
json.dump({"versions": versions, "vectors": merged}, sys.stdout, indent=0, sort_keys=True)

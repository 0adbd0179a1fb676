"""Helpers shared by the steps: parameters, data files, deterministic JSON."""
import csv
import json
import os

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def param(name, cast):
    return cast(os.environ["PARAM_" + name.upper()])


def read_rows(path):
    with open(path, newline="") as f:
        return [([float(r[k]) for k in FEATURES], r["species"]) for r in csv.DictReader(f)]


def write_json(path, value):
    # Sorted keys and rounded floats: the same model gives the same bytes, so steps
    # downstream are reused from the cache.
    with open(path, "w") as f:
        json.dump(value, f, sort_keys=True, indent=1)
        f.write("\n")


def metric(**values):
    print(json.dumps(values), flush=True)

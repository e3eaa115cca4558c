"""What the deployment tests share: the repository, the deploy tools, the built binaries, and
rendering an overlay the way the pipeline does."""
import functools
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# kubectl (the system's, or the venv's when the system has none) and the linters' venv.
_TOOLS = subprocess.run(
    [os.path.join(ROOT, "scripts", "deploy-tools")], check=True, capture_output=True, text=True
).stdout.strip()
os.environ["PATH"] = _TOOLS + os.pathsep + os.environ["PATH"]


def run(*command, **options):
    """Runs a command from the repository root; fails with its output when it fails."""
    options.setdefault("cwd", ROOT)
    result = subprocess.run(command, capture_output=True, text=True, **options)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


@functools.lru_cache(maxsize=None)
def services_table():
    """The rows of `scripts/changed-services --table`, as dictionaries."""
    rows = []
    for line in run("scripts/changed-services", "--table").splitlines():
        service, program, prefix, kind, tests = line.split()
        rows.append(dict(service=service, program=program, prefix=prefix, kind=kind, tests=tests))
    return rows


def servers():
    return [row for row in services_table() if row["kind"] == "server"]


@functools.lru_cache(maxsize=None)
def bin_dir():
    """Where `swift build` put the executables: $MAAS_BIN_DIR, else what SwiftPM says."""
    return os.environ.get("MAAS_BIN_DIR") or run("swift", "build", "--show-bin-path").strip()


def describe(program, environment=None):
    """`<program> config` under `environment` (nothing else set): what the binary reads."""
    binary = os.path.join(bin_dir(), program)
    if not os.access(binary, os.X_OK):
        raise AssertionError(f"{binary} is not built: run `swift build` first (make test-deploy does)")
    return json.loads(run(binary, "config", env=dict(environment or {})))


@functools.lru_cache(maxsize=None)
def render(directory):
    """`kubectl kustomize DIRECTORY` as a list of objects."""
    return [doc for doc in yaml.safe_load_all(run("kubectl", "kustomize", directory)) if doc]


def find(objects, kind, name):
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    if len(matches) != 1:
        raise AssertionError(f"expected one {kind} {name}, found {len(matches)}")
    return matches[0]


def load_yaml(path):
    with open(os.path.join(ROOT, path)) as file:
        return yaml.safe_load(file)


# A metric name as the servers export them (what PromQL and the READMEs' tables name).
METRIC = re.compile(r"\b((?:grpc|maas|process)_[a-z_]+)")


def metrics_in(expression):
    """The metric names a PromQL expression reads, a histogram's `_bucket`, `_sum` and `_count`
    as the histogram: label matchers and `by (...)` lists name labels, not metrics."""
    bare = re.sub(r"by \([^)]*\)", "", re.sub(r"\{[^}]*\}", "", expression))
    return {re.sub(r"_(bucket|sum|count)$", "", name) for name in METRIC.findall(bare)}


def check_rules(test, groups):
    """Fails `test` unless `promtool check rules` accepts the rule `groups` (Prometheus's rules
    file layout); also how queries that are not rules are checked, as recording rules."""
    directory = tempfile.mkdtemp()
    test.addCleanup(shutil.rmtree, directory)
    path = os.path.join(directory, "rules.yaml")
    with open(path, "w") as file:
        yaml.safe_dump({"groups": groups}, file)
    test.assertIn("SUCCESS", run("promtool", "check", "rules", path))


def documented_metrics():
    """The metrics in the first column of the READMEs' metrics tables (the top-level one and each
    library's): what the servers export, as the docs say."""
    names = set()
    for readme in ["README.md", *sorted(glob.glob(os.path.join(ROOT, "Sources", "*", "README.md")))]:
        with open(os.path.join(ROOT, readme)) as file:
            for line in file:
                if line.startswith("| `"):
                    first = line.split("|")[1]
                    names.update(name for name in re.findall(r"`([a-z_]+)`", first) if METRIC.fullmatch(name))
    return names

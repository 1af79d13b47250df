"""cloudbuild.yaml parses, runs the four stages in order, and names only files that exist."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
PATH = re.compile(r"\b((?:infra|functions|terraform|tests)/[\w./-]*\w)")
BUILT_IN = {"PROJECT_ID", "BUILD_ID", "PROJECT_NUMBER", "LOCATION", "COMMIT_SHA", "SHORT_SHA"}


def load() -> dict[str, Any]:
    data = YAML(typ="safe").load((ROOT / "cloudbuild.yaml").read_text())
    assert isinstance(data, dict)
    return data


def step_text(step: dict[str, Any]) -> str:
    return " ".join([step.get("entrypoint", ""), *map(str, step.get("args", []))])


def test_steps_test_scan_package_and_deploy_in_order() -> None:
    steps = load()["steps"]
    ids = [s["id"] for s in steps]
    assert len(set(ids)) == len(ids)
    for step in steps:
        assert step.get("name"), step
        for dependency in step.get("waitFor", []):
            assert dependency in ids[: ids.index(step["id"])], f"{step['id']} waits on {dependency}"
    text = {s["id"]: step_text(s) for s in steps}
    assert "make test" in text["test"]
    assert "infra/local/checkov.sh" in text["checkov"]
    assert "infra/package_functions.py" in text["package"]
    assert "terraform init" in text["terraform-init"]
    assert "-backend-config=bucket=${_STATE_BUCKET}" in text["terraform-init"]
    assert "-out=tfplan" in text["terraform-plan"]
    assert "terraform apply -input=false -lock-timeout=5m tfplan" in text["terraform-apply"]
    order = [ids.index(i) for i in ("test", "checkov", "package", "terraform-init")]
    assert order == sorted(order)
    init = next(s for s in steps if s["id"] == "terraform-init")
    assert set(init["waitFor"]) == {"test", "checkov", "package"}
    # The plan is stored before the apply step runs.
    assert ids.index("store-plan") < ids.index("terraform-apply")


def test_referenced_paths_exist() -> None:
    steps = load()["steps"]
    for step in steps:
        if "dir" in step:
            assert (ROOT / step["dir"]).is_dir(), step["dir"]
        for path in PATH.findall(step_text(step)):
            assert (ROOT / path).exists(), f"step {step['id']} names missing {path}"
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test:", makefile, re.MULTILINE)


def test_substitutions_are_declared_and_used() -> None:
    data = load()
    declared = set(data["substitutions"])
    text = (ROOT / "cloudbuild.yaml").read_text()
    body = text.split("\nsteps:", 1)[1]
    used = set(re.findall(r"\$\{(_[A-Z_]+)\}", body))
    assert used == declared, f"declared {declared}, used {used}"
    assert {"_ORG_ID", "_PROJECT_ID", "_REGION", "_STATE_BUCKET"} <= declared
    for name in re.findall(r"\$\{([A-Z_]+)\}", body):
        assert name in declared or name in BUILT_IN, name
    assert data["options"]["substitutionOption"] == "MUST_MATCH"


def test_terraform_variables_the_build_sets_exist_in_the_example() -> None:
    import hcl2

    example = hcl2.loads((ROOT / "terraform" / "examples" / "org" / "main.tf").read_text())
    declared = {k.strip('"') for entry in example["variable"] for k in entry}
    text = (ROOT / "cloudbuild.yaml").read_text()
    for name in re.findall(r"-var=(\w+)=", text):
        assert name in declared, f"cloudbuild sets -var={name}, the example has no such variable"


def test_package_is_reproducible_and_holds_the_entry_points(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(ROOT / "infra"))
    try:
        import package_functions
    finally:
        sys.path.remove(str(ROOT / "infra"))
    source = tmp_path / "functions"
    (source / "armirror" / "__pycache__").mkdir(parents=True)
    (source / "main.py").write_text("def on_pull_event(e): ...\n")
    (source / "requirements.txt").write_text("httpx\n")
    (source / "armirror" / "__init__.py").write_text("")
    (source / "armirror" / "__pycache__" / "x.cpython-312.pyc").write_bytes(b"\0")
    (source / "armirror.egg-info").mkdir()
    (source / "armirror.egg-info" / "PKG-INFO").write_text("x")
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    assert package_functions.main(["x", str(source), str(first)]) == 0
    (source / "main.py").touch()  # a new mtime must not change the archive
    assert package_functions.main(["x", str(source), str(second)]) == 0
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        assert archive.namelist() == ["armirror/__init__.py", "main.py", "requirements.txt"]
    assert package_functions.main(["x", str(tmp_path / "armirror.egg-info"), str(first)]) == 1

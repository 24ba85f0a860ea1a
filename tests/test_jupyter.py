"""The book in Jupyter: a real JupyterLab serves a chapter as a notebook, a kernel runs it, the README says how.

One `jupyter server` is started per test session on 127.0.0.1, a free port and a token, and stopped by
its process id (fixture ``served_chapter`` in ``conftest.py``); one kernel runs the chapter it served
in the smoke profile (``kernel_executed_chapter``), and tests/test_teaching.py builds both editions of
the book from that run. The README test starts the README's `jupyter lab` the same way.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from jupyter_helpers import BOOK, INTERACTIVE_CHAPTER, REPO, jupyter_command, running_server

README_SECTION = "## Reading and running the chapters interactively"
BOOK_STACK = {"myst_nb", "jupyter_book", "sphinx", "papermill", "nbclient", "scrapbook", "jupytext"}


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


# ------------------------------------------------------------------------------------------------
# a real server serves a chapter as a notebook; a kernel runs it


def check_served_chapter(response: tuple[int, str, bytes]) -> None:
    """A contents-API answer is the chapter as a notebook (jupytext's server extension), parameters cell first."""
    status, content_type, body = response
    assert status == 200 and content_type.startswith("application/json"), (status, body[:300])
    model = json.loads(body)
    assert model["type"] == "notebook" and model["format"] == "json", (model["type"], model["format"])
    cells = model["content"]["cells"]
    tagged = [c for c in cells if "parameters" in _tags(c)]
    assert len(tagged) == 1 and tagged[0]["cell_type"] == "code"
    assert re.search(r"^profile\s*=", tagged[0]["source"], flags=re.M), tagged[0]["source"]
    assert cells.index(tagged[0]) <= 2, "the parameters cell comes first, where a reader edits it"
    assert model["content"]["metadata"]["kernelspec"]["name"] == "python3"


def test_jupyter_server_serves_a_chapter_as_a_notebook_with_its_parameters_cell(served_chapter):
    assert served_chapter["command"][1:] == ["server"]
    check_served_chapter(served_chapter["chapter"])
    if Path("/proc").is_dir():  # stopped by its own process id: the process is gone
        assert not Path(f"/proc/{served_chapter['pid']}").exists(), "the server is still running"


def test_the_served_chapter_runs_in_a_kernel_in_the_smoke_profile(kernel_executed_chapter):
    nb = kernel_executed_chapter["notebook"]
    code = [c for c in nb.cells if c.cell_type == "code"]
    params = next(c for c in code if "parameters" in _tags(c))
    assert re.search(r'^profile = "smoke"', params.source, flags=re.M)
    assert all(c.get("execution_count") for c in code), "a code cell did not run"
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors[0].get("evalue") if errors else ""
    assert any("image/png" in o.get("data", {}) for c in code for o in c.get("outputs", [])), "no figure"
    print(f"{INTERACTIVE_CHAPTER} ran in a kernel in {kernel_executed_chapter['seconds']:.1f} s (smoke)")


# ------------------------------------------------------------------------------------------------
# chapters run top to bottom with nothing but the package and a kernel


def _code_cells(stem: str) -> list[str]:
    import jupytext

    return [c.source for c in jupytext.read(BOOK / f"{stem}.md").cells if c.cell_type == "code"]


def _imported(source: str) -> set[str]:
    import ast

    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    found = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def _chapter_stems() -> list[str]:
    from fastfcn.book.chapters import list_chapters

    try:
        return [c.stem for c in list_chapters(BOOK) if c.exists]
    except Exception:  # no yaml or a broken toc: tests/test_book.py says so, collection goes on
        return []


@pytest.mark.parametrize("stem", _chapter_stems())
def test_chapters_need_no_book_stack_and_no_other_chapters_outputs(stem):
    """A chapter imports no book tooling (``fastfcn.book``'s ``note``/``record`` work without it) and reads
    no executed output of another chapter (``_executed``): it runs as a plain notebook."""
    for source in _code_cells(stem):
        assert not _imported(source) & BOOK_STACK, f"{stem} imports {_imported(source) & BOOK_STACK}"
        assert "_executed" not in source, f"{stem} reads the executed outputs of the book:\n{source[:300]}"


def test_the_package_and_the_chapter_api_import_without_jupyter():
    blocked = sorted(BOOK_STACK | {"jupyter_core", "jupyter_client", "jupyter_server", "jupyterlab", "nbformat",
                                   "IPython", "ipykernel", "yaml"})
    code = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
import fastfcn, fastfcn.book.editions, fastfcn.book.exercises, fastfcn.cli
from fastfcn.book import note, record
assert note("x", 1) == 1 and record("y", 2) == 2
fastfcn.cli.build_parser().parse_args(["book", "build", "--edition", "student"])
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-2000:]


# ------------------------------------------------------------------------------------------------
# the README's section, run


def readme_commands() -> list[str]:
    """The commands of the README's section, one per entry (continuation lines joined, comments cut)."""
    text = (REPO / "README.md").read_text()
    assert README_SECTION in text, f"README.md has no section {README_SECTION!r}"
    section = text.split(README_SECTION, 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                commands.append(" ".join(line.split()))
    return commands


def _check_make_install(command: str, tmp_path: Path) -> None:
    # a dry run of what `make install` does (running it would reinstall the environment under test)
    assert command == "make install"
    dry = subprocess.run(["make", "-n", "-B", "install"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    install = next(line for line in dry.stdout.splitlines() if "scripts/install_venv.py" in line)
    extras = re.search(r"\.\[([\w,]+)\]", install).group(1).split(",")
    assert {"book", "test", "lab"} <= set(extras), install
    assert "jupyter/fastfcn-book.json" in dry.stdout and "overrides.d" in dry.stdout, dry.stdout


def _check_jupyter_lab(command: str, tmp_path: Path) -> None:
    # the venv's jupyter, from the repository's root, with a free port, a token and --no-browser added
    assert command.split() == [".venv/bin/jupyter", "lab"], command
    with running_server(jupyter_command("lab"), REPO, tmp_path / "lab") as server:
        lab_page = server.get("/lab")
        docmanager = server.get("/lab/api/settings/@jupyterlab/docmanager-extension:plugin")
        check_served_chapter(server.get(f"/api/contents/book/{INTERACTIVE_CHAPTER}.md?type=notebook&content=1"))
    status, content_type, body = lab_page
    assert status == 200 and content_type.startswith("text/html") and b"JupyterLab" in body, status
    status, _, body = docmanager
    assert status == 200, body[:300]
    viewers = json.loads(body)["schema"]["properties"]["defaultViewers"]["default"]
    wanted = json.loads((REPO / "jupyter" / "fastfcn-book.json").read_text())
    assert viewers == wanted["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]
    assert viewers["markdown"] == "Jupytext Notebook", "a double click on a chapter would open it as text"


def _check_papermill(command: str, tmp_path: Path) -> None:
    # run from a scratch folder that looks like the repository's root, so the output lands there;
    # --prepare-only: the parameters are injected, nothing is executed (the kernel test runs the chapter)
    assert "papermill" in command and "-p profile smoke" in command, command
    for name in ("book", ".venv"):
        (tmp_path / name).symlink_to(REPO / name)
    proc = subprocess.run(["bash", "-c", f"set -o pipefail; {command} --prepare-only"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    outputs = [p for p in tmp_path.glob("*.ipynb")]
    assert len(outputs) == 1, outputs
    cells = json.loads(outputs[0].read_text())["cells"]
    injected = [c for c in cells if "injected-parameters" in _tags(c)]
    assert injected and re.search(r'profile = "smoke"', "".join(injected[0]["source"]))
    tagged = [i for i, c in enumerate(cells) if "parameters" in _tags(c)]
    assert tagged and cells.index(injected[0]) == tagged[0] + 1


def test_readme_interactive_section_runs(tmp_path):
    if not (REPO / ".venv" / "bin" / "papermill").exists():
        pytest.skip("the README's commands use .venv: run `make install` first")
    commands = readme_commands()
    assert any(c.endswith("jupyter lab") for c in commands), commands
    for command in commands:
        if command.startswith("make "):
            _check_make_install(command, tmp_path)
        elif "jupyter lab" in command:
            _check_jupyter_lab(command, tmp_path)
        elif "papermill" in command:
            _check_papermill(command, tmp_path)
        else:
            raise AssertionError(f"the README runs {command!r}, which this test does not know how to run: "
                                 "add a rule to tests/test_jupyter.py")

"""Notebooks are product: committed without outputs, except the ones nbval checks."""

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
MARK = "NBVAL_CHECK_OUTPUT"


def test_the_curriculum_starts_with_the_welcome_notebook():
    assert NOTEBOOKS and NOTEBOOKS[0].name == "00_welcome.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_only_checked_cells_carry_outputs(path):
    nb = nbformat.read(path, as_version=4)
    assert "widgets" not in nb.metadata, "widget state is committed: run tools/nbclean.py"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if MARK in cell.source:
            # nbval passes silently when a checked cell has no stored output.
            assert cell.outputs, f"cell {i} is checked but has no stored output: run tools/nbclean.py --execute"
            kinds = {o.output_type for o in cell.outputs}
            assert "error" not in kinds, f"cell {i} stored an error"
        else:
            assert not cell.outputs, f"cell {i} has outputs: run tools/nbclean.py {path.name}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_uses_the_default_python_kernel(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"

"""The house's size and rhythm rules (issue 26), measured on the repository itself.

- no library module over 350 lines (`_modidx.py`, which nbdev writes, aside);
- export cells are short: the median export cell is at most 15 lines and none is over 60, counting the lines that are
  neither blank nor `#|` directives;
- every export cell has a test or an example right under it: the next code cell is not another export cell (a cell of
  imports alone aside).
"""

import ast
import json
import statistics
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / 'nbs').glob('*.ipynb'))
MAX_MODULE, MAX_CELL, MEDIAN_CELL = 350, 60, 15


def is_export(source: str) -> bool:
    "An nbdev export cell: a `#| export` (or `#| exports`) directive among its leading `#|` lines."
    for line in source.splitlines():
        if not line.startswith('#|'):
            return False
        if line[2:].split()[:1] in (['export'], ['exports']):
            return True
    return False


def only_imports(source: str) -> bool:
    "A cell of import statements alone (the imports cell a notebook opens with needs no test of its own)."
    body = '\n'.join(l for l in source.splitlines() if not l.startswith('#|'))
    try:
        nodes = ast.parse(body).body
    except SyntaxError:
        return False

    def plain(n):  # an import, or nbdev's `_all_ = [...]` that re-exports imported names
        return isinstance(n, (ast.Import, ast.ImportFrom)) or (
            isinstance(n, ast.Assign) and [getattr(t, 'id', None) for t in n.targets] == ['_all_']
        )

    return bool(nodes) and all(plain(n) for n in nodes)


def cell_lines(source: str) -> int:
    "A cell's size: its lines that are neither blank nor `#|` directives."
    return sum(1 for l in source.splitlines() if l.strip() and not l.startswith('#|'))


def export_cells(nb: Path) -> list[tuple[int, int, bool]]:
    "(position among the code cells, size, has a test or example under it) for each export cell of `nb`."
    code = [''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']
    return [
        (i, cell_lines(src), only_imports(src) or (i + 1 < len(code) and not is_export(code[i + 1])))
        for i, src in enumerate(code)
        if is_export(src)
    ]


def test_is_export():
    assert is_export('#| export\nx = 1') and is_export('#| exports\nx = 1') and is_export('#| hide\n#| export\nx = 1')
    assert not is_export('x = 1') and not is_export('#| hide\nx = 1') and not is_export('# export\nx = 1')
    assert cell_lines('#| export\n\nx = 1\n  \ny = 2\n') == 2
    assert only_imports('#| export\nimport os\nfrom pathlib import Path') and not only_imports(
        '#| export\nimport os\nx = 1'
    )


def test_modules_are_short():
    sizes = {p.relative_to(ROOT): len(p.read_text().splitlines()) for p in (ROOT / 'gcsa_fer').rglob('*.py')}
    long = {str(p): n for p, n in sizes.items() if n > MAX_MODULE and p.name != '_modidx.py'}
    assert not long, f"modules over {MAX_MODULE} lines: {long}"


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=lambda p: p.name)
def test_export_cells_have_a_test_under_them(nb):
    bare = [i for i, _, tested in export_cells(nb) if not tested]
    assert not bare, f"{nb.name}: export cells (code cell positions) {bare} have no test or example under them"


def test_export_cells_are_short():
    sizes = {(nb.name, i): n for nb in NOTEBOOKS for i, n, _ in export_cells(nb)}
    long = {k: n for k, n in sizes.items() if n > MAX_CELL}
    assert not long, f"export cells over {MAX_CELL} lines: {long}"
    assert statistics.median(sizes.values()) <= MEDIAN_CELL

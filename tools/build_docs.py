#!/usr/bin/env python
"""Build the documentation site from the notebooks, offline: `make docs` (build) and `make docs-check`.

nbdev 2 renders its docs with Quarto (`nbdev_docs`), which cannot be installed on the machines this project
runs on (Quarto ships no wheel on PyPI and is not in Debian; its sdist downloads from GitHub). The Quarto configuration in nbs/ (_quarto.yml, nbdev.yml, sidebar.yml,
styles.css) stays valid for users who have Quarto; this script builds an equivalent static site with
MkDocs + Material for MkDocs + mkdocs-jupyter, and needs no network:

1. copy `nbs/index.ipynb` and every top-level numbered notebook `nbs/NN_*.ipynb` (not nbs/experiments/);
2. execute each copy with the notebook's own folder (nbs/) as working directory, the nbdev way: cells marked
   `#| eval: false`, `#| slow`, `#| gpu` or `#| notest`, and cells that call `nbdev_export`, are not run;
   an error in any other cell fails the build and names the notebook and the cell;
3. process the executed copy the nbdev way: drop `#| hide`, `#| default_exp` and `#| include: false` cells,
   honour `#| echo: false` / `#| output: false` / `#| hide_input` / `#| hide_output`, strip every `#|`
   directive line from the cells that are shown, and add `show_doc` for exported names that the notebook
   does not document itself (as nbdev's `add_show_docs` does);
4. write a mkdocs.yml into the build folder (home page first, then the components in numeric order, titled by
   their `# Title` cell) and run `mkdocs build` into site/.

Executed notebooks are cached in _docs_build/cache, keyed on the notebook and the library source, so a second
`make docs` with nothing changed only re-renders. `--check-only` checks an existing site/: an index page, one
non-empty page per numbered notebook showing its title, and at least one rendered `show_doc` entry.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / 'nbs'
BUILD = ROOT / '_docs_build'  # gitignored: processed notebooks, mkdocs.yml, execution cache
SITE = ROOT / 'site'  # gitignored: the built site
ASSETS = Path(__file__).resolve().parent / 'docs_assets'
COMPONENT_RE = re.compile(r'^(\d\d)[a-z]?_.+\.ipynb$')  # 08_data, 08a_fetch, ...: every numbered notebook
DIRECTIVE_RE = re.compile(r'^\s*#\s*\|\s*(.*?)\s*$')
NO_EXEC = {'slow', 'gpu', 'notest'}  # settings.ini tst_flags: cells nbdev_test skips on a CPU
SKIP_TAG = 'skip-execution'  # nbconvert's ExecutePreprocessor leaves cells with this tag alone
CHECK_MARKER = 'data-gcsa-docs-page'  # written into every page we build, checked by --check-only


# ---------------------------------------------------------------------------------------------- notebooks
def notebook_list(nbs: Path = NBS) -> list[Path]:
    "The notebooks that become pages: index first, then `NN_*.ipynb` in numeric order, then any other top-level notebook."
    nbs_ = sorted(p for p in nbs.glob('*.ipynb') if not p.name.startswith(('.', '_')))
    index = [p for p in nbs_ if p.name == 'index.ipynb']
    comps = sorted((p for p in nbs_ if COMPONENT_RE.match(p.name)), key=lambda p: (int(p.name[:2]), p.name))
    rest = [p for p in nbs_ if p not in index and p not in comps]
    return index + comps + rest


def components(nbs: Path = NBS) -> list[Path]:
    return [p for p in notebook_list(nbs) if COMPONENT_RE.match(p.name)]


def directives(source: str) -> dict[str, str]:
    "nbdev directives (`#| name value` or `#| name: value`) at the top of a cell: {name: value}."
    out = {}
    for line in source.splitlines():
        m = DIRECTIVE_RE.match(line)
        if not m:
            if line.strip() == '':
                continue
            break
        body = m.group(1)
        if not body:
            continue
        name, _, value = body.partition(':') if re.match(r'^[\w-]+\s*:', body) else body.partition(' ')
        out[name.strip().lower()] = value.strip()
    return out


def strip_directives(source: str) -> str:
    "The cell's source without its `#|` lines (anywhere in the cell, as Quarto hides them all)."
    return '\n'.join(l for l in source.splitlines() if not DIRECTIVE_RE.match(l)).strip('\n')


def is_false(v: str) -> bool:
    return v.strip().lower() in ('false', 'no', '0')


def title_of(nb) -> tuple[str, str]:
    "The `# Title` and the `> subtitle` of the notebook's first title cell."
    for c in nb.cells:
        if c.cell_type != 'markdown':
            continue
        m = re.search(r'^#\s+(.+?)\s*$', c.source, re.M)
        if m:
            s = re.search(r'^>\s*(.+?)\s*$', c.source, re.M)
            return m.group(1).strip(), (s.group(1).strip() if s else '')
    return '', ''


def _exported_names(source: str) -> list[str]:
    "Public top-level functions and classes defined in an exported cell (what nbdev's add_show_docs documents)."
    try:
        tree = ast.parse(strip_directives(source))
    except SyntaxError:
        return []
    return [
        n.name
        for n in tree.body
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        and (not n.name.startswith('_') or n.name.startswith('__'))
    ]


def prepare_for_execution(nb) -> None:
    "Mark the cells not to run, and add nbdev's automatic `show_doc` cells, in place."
    documented = set(
        re.findall(r'show_doc\(\s*([\w.]+)', '\n'.join(c.source for c in nb.cells if c.cell_type == 'code'))
    )
    cells, added = [], False
    for c in nb.cells:
        cells.append(c)
        if c.cell_type != 'code':
            continue
        d = directives(c.source)
        skip = (NO_EXEC & d.keys()) or is_false(d.get('eval', 'true')) or 'nbdev_export(' in c.source
        if skip:
            c.metadata.setdefault('tags', []).append(SKIP_TAG)
        if ({'export', 'exports'} & d.keys()) and not skip:
            for name in _exported_names(c.source):
                if name in documented:
                    continue
                documented.add(name)
                added = True
                cells.append(nbformat.v4.new_code_cell(f'show_doc({name})', metadata={'gcsa_docs': 'auto_show_doc'}))
    if added:
        cells.insert(0, nbformat.v4.new_code_cell('#| hide\nfrom nbdev.showdoc import show_doc'))
    nb.cells = cells


QUARTO_LINK_RE = re.compile(r'\[([^\]]+)\]\(([^)\s]+)\)\{([^}]*)\}')


def quarto_links(md: str) -> str:
    "show_doc writes `[source](url){target=... style=...}`, Pandoc's link attributes: make them an HTML link."
    md = ''.join(md) if isinstance(md, list) else md
    return QUARTO_LINK_RE.sub(
        lambda m: f'<a href="{m.group(2)}" class="gcsa-source-link" {m.group(3)}>{m.group(1)}</a>', md
    )


SHOW_DOC_ONLY_RE = re.compile(r'^(\s*show_doc\([^\n]*\)\s*(#[^\n]*)?\n?)+\s*$')


def process_for_docs(nb) -> None:
    "Turn an executed notebook into what the page shows, in place (the nbdev rules listed in the module docstring)."
    cells = []
    for c in nb.cells:
        tags = [t for t in c.metadata.get('tags', []) if t != SKIP_TAG]
        c.metadata.pop('tags', None)  # mkdocs-jupyter would print tags above the cell
        c.metadata.pop('execution', None)
        if c.cell_type != 'code':
            if c.cell_type == 'markdown' and '<!-- hide -->' in c.source:
                continue
            cells.append(c)
            continue
        d = directives(c.source)
        if {'hide', 'default_exp', 'exporti'} & d.keys() or is_false(d.get('include', 'true')) or 'remove-cell' in tags:
            continue
        c.source = strip_directives(c.source)
        if SHOW_DOC_ONLY_RE.match(c.source):
            c.metadata['transient'] = {'remove_source': True}  # nbdev shows a show_doc cell's output, not its code
        if is_false(d.get('echo', 'true')) or 'hide_input' in d or 'remove-input' in tags:
            c.metadata['transient'] = {'remove_source': True}
        if is_false(d.get('output', 'true')) or 'hide_output' in d or 'remove-output' in tags:
            c.outputs = []
        for o in c.outputs:
            if 'data' in o and 'text/markdown' in o['data']:
                o['data']['text/markdown'] = quarto_links(o['data']['text/markdown'])
        # progress bars and warnings on stderr are noise on a page; errors are not shown (they fail the build)
        c.outputs = [o for o in c.outputs if not (o.output_type == 'stream' and o.get('name') == 'stderr')]
        if not c.source.strip() and not c.outputs:
            continue
        cells.append(c)
    nb.cells = cells
    nb.metadata = {k: v for k, v in nb.metadata.items() if k in ('kernelspec', 'language_info')}


# ---------------------------------------------------------------------------------------------- execution
def _library_digest() -> str:
    h = hashlib.sha256()
    for p in sorted((ROOT / 'gcsa_fer').rglob('*.py')) + [ROOT / 'settings.ini', Path(__file__).resolve()]:
        if p.exists():
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()


ANSI_RE = re.compile(r'\x1b\[[0-9;]*m')


def _short_error(msg: str) -> str:
    "The failing cell's source and the last lines of the traceback, without terminal colours."
    msg = ANSI_RE.sub('', msg).strip()
    parts = msg.split('------------------')
    cell = parts[1].strip('\n') if len(parts) >= 3 else ''
    tb = [l for l in msg.splitlines() if l.strip()][-6:]
    return (
        ('  failing cell:\n    ' + '\n    '.join(cell.splitlines()[:20]) + '\n' if cell else '')
        + '  error:\n    '
        + '\n    '.join(tb)
    )


def execute_one(src: str, dst: str, cache_dir: str, lib_digest: str, timeout: int) -> tuple[str, float, bool, str]:
    "Execute and process one notebook (run in a worker process). Returns (name, seconds, cache hit, error or '')."
    from nbconvert.preprocessors import ExecutePreprocessor, CellExecutionError

    t0, src, dst = time.time(), Path(src), Path(dst)
    key = hashlib.sha256(src.read_bytes() + lib_digest.encode()).hexdigest()[:24]
    cached = Path(cache_dir) / f'{src.stem}-{key}.ipynb'
    if cached.exists():
        shutil.copyfile(cached, dst)
        return src.name, time.time() - t0, True, ''
    nb = nbformat.read(src, as_version=4)
    prepare_for_execution(nb)
    # the kernel inherits this worker's stderr: send its start-up chatter to a log, not the terminal
    log = Path(cache_dir).parent / 'logs' / f'{src.stem}.log'
    log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 2)
    os.close(fd)
    # the kernel imports the library from this checkout, whether or not it is installed in the environment
    env_pp = os.environ.get('PYTHONPATH', '')
    os.environ['PYTHONPATH'] = str(ROOT) + (os.pathsep + env_pp if env_pp else '')
    # the venv's own python3 kernel, not one a user registered for another environment in ~/.local/share/jupyter
    os.environ['JUPYTER_DATA_DIR'] = str(Path(cache_dir).parent / 'jupyter')
    os.environ.setdefault('MPLBACKEND', 'module://matplotlib_inline.backend_inline')
    ep = ExecutePreprocessor(timeout=timeout, kernel_name='python3', skip_cells_with_tag=SKIP_TAG, allow_errors=False)
    try:
        ep.preprocess(nb, {'metadata': {'path': str(src.parent)}})
    except CellExecutionError as e:
        return src.name, time.time() - t0, False, _short_error(str(e))
    except Exception as e:  # a timeout, a dead kernel
        return src.name, time.time() - t0, False, f'{type(e).__name__}: {e}'
    process_for_docs(nb)
    nbformat.write(nb, dst)
    cached.parent.mkdir(parents=True, exist_ok=True)
    for old in cached.parent.glob(f'{src.stem}-*.ipynb'):
        old.unlink()
    shutil.copyfile(dst, cached)
    return src.name, time.time() - t0, False, ''


# ---------------------------------------------------------------------------------------------- mkdocs
def _settings() -> dict[str, str]:
    from configparser import ConfigParser

    cp = ConfigParser(delimiters=['='])
    cp.read(ROOT / 'settings.ini', encoding='utf-8')
    return dict(cp['DEFAULT'])


MATHJAX_URL = 'assets/mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe'
NO_MATHJAX_URL = 'assets/no-mathjax.js'


def copy_mathjax(dst: Path) -> bool:
    "Copy MathJax 2.7 from the `jupyter-server-mathjax` wheel, so TeX renders without a CDN. False if it is not installed."
    try:
        import jupyter_server_mathjax
    except ImportError:
        print(
            'build_docs: jupyter-server-mathjax is not installed: TeX will show as written (pip install jupyter-server-mathjax)'
        )
        return False
    src = Path(jupyter_server_mathjax.__file__).parent / 'static'
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns('localization', '*.otf', '*.eot'))
    return True


def mkdocs_config(nav: list[dict], docs_dir: Path, mathjax: bool = False) -> dict:
    s = _settings()
    return {
        'site_name': s.get('title', s.get('lib_name', 'docs')),
        'site_description': s.get('description', ''),
        'site_author': s.get('author', ''),
        'copyright': f"Copyright {s.get('copyright', '')}",
        'docs_dir': str(docs_dir),
        'site_dir': str(SITE),
        'use_directory_urls': False,  # NN_name.html pages: they open from the file system too
        'strict': False,
        'theme': {
            'name': 'material',
            'font': False,  # no Google Fonts: the system fonts, and no network
            'icon': {'logo': 'material/face-recognition', 'repo': 'fontawesome/brands/github'},
            'palette': {'scheme': 'default', 'primary': 'indigo', 'accent': 'indigo'},
            # the page's contents go under its entry in the left menu, so the code gets the width of two columns
            'features': [
                'toc.integrate',
                'navigation.top',
                'navigation.footer',
                'toc.follow',
                'search.highlight',
                'content.code.copy',
            ],
        },
        # a plain link, not `repo_url`: Material would ask GitHub's API for star counts from every page
        'extra': {
            'generator': False,
            # the offline plugin would load this shim from unpkg; ours is vendored in tools/docs_assets
            'polyfills': ['assets/iframe-worker-shim.js'],
            'social': [{'icon': 'fontawesome/brands/github', 'link': s.get('git_url', ''), 'name': 'Source on GitHub'}],
        },
        'extra_css': ['assets/extra.css'],
        'plugins': [
            'search',
            'offline',  # search works from file:// (the index is embedded in the pages)
            {
                'mkdocs-jupyter': {
                    'include': ['*.ipynb'],
                    'execute': False,
                    'include_source': False,
                    'ignore_h1_titles': True,  # the nav labels (Home, then each title) name the pages 'no_prompt': True, 'toc_depth': 3,
                    'allow_errors': False,
                    'include_requirejs': False,
                    'theme': 'light',
                    # MathJax from the build, never from a CDN (every page sits at the top of site/, so the path is relative)
                    'custom_mathjax_url': MATHJAX_URL if mathjax else NO_MATHJAX_URL,
                    'cache': False,
                }
            },
        ],
        'hooks': [str(Path(__file__).resolve().parent / 'docs_hooks.py')],
        'markdown_extensions': ['tables', 'admonition', 'toc', 'pymdownx.superfences', 'pymdownx.highlight'],
        'nav': nav,
    }


# ---------------------------------------------------------------------------------------------- build / check
def build(jobs: int, timeout: int, use_cache: bool) -> int:
    import yaml

    t0 = time.time()
    nbs_ = notebook_list()
    if not nbs_:
        sys.exit('build_docs: no notebooks in nbs/')
    docs_dir = BUILD / 'docs'
    if docs_dir.exists():
        shutil.rmtree(docs_dir)
    (docs_dir / 'assets').mkdir(parents=True)
    for a in ASSETS.iterdir():
        shutil.copy(a, docs_dir / 'assets' / a.name)
    mathjax = copy_mathjax(docs_dir / 'assets' / 'mathjax')
    cache_dir = BUILD / 'cache'
    if not use_cache and cache_dir.exists():
        shutil.rmtree(cache_dir)
    lib = _library_digest()

    print(f'build_docs: executing {len(nbs_)} notebooks ({jobs} at a time)', flush=True)
    failures = []
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futs = [pool.submit(execute_one, str(p), str(docs_dir / p.name), str(cache_dir), lib, timeout) for p in nbs_]
        for f in futs:
            name, secs, hit, err = f.result()
            print(f'  {name:32s} {"cached" if hit else f"{secs:5.1f} s"}{"  FAILED" if err else ""}', flush=True)
            if err:
                failures.append((name, err))
    if failures:
        for name, err in failures:
            print(f'\nbuild_docs: {name} failed to execute:\n{err}', file=sys.stderr)
        sys.exit(f'build_docs: {len(failures)} notebook(s) failed: {", ".join(n for n, _ in failures)}')

    nav = []
    for p in nbs_:
        title, _ = title_of(nbformat.read(docs_dir / p.name, as_version=4))
        label = 'Home' if p.name == 'index.ipynb' else (title or p.stem)
        nav.append({label: p.name})
    cfg = BUILD / 'mkdocs.yml'
    cfg.write_text(
        '# generated by tools/build_docs.py: edit that script, not this file\n'
        + yaml.safe_dump(mkdocs_config(nav, docs_dir, mathjax), sort_keys=False, allow_unicode=True)
    )
    t_exec = time.time() - t0
    if SITE.exists():
        shutil.rmtree(SITE)
    env = {**os.environ, 'NO_MKDOCS_2_WARNING': '1'}  # Material's end-of-life notice, printed on every build
    r = subprocess.run([sys.executable, '-m', 'mkdocs', 'build', '-q', '-f', str(cfg)], cwd=BUILD, env=env)
    if r.returncode:
        sys.exit(f'build_docs: mkdocs build failed (exit {r.returncode}); config in {cfg}')
    for p in nbs_:  # a marker the check looks for, so a stale or foreign site/ does not pass
        page = SITE / p.with_suffix('.html').name
        if page.exists():
            html = page.read_text(encoding='utf-8')
            page.write_text(html.replace('<body', f'<body {CHECK_MARKER}="{p.name}"', 1), encoding='utf-8')
    n_comp = sum(bool(COMPONENT_RE.match(p.name)) for p in nbs_)
    print(
        f'build_docs: {len(nbs_)} pages ({n_comp} components) in {time.time() - t0:.1f} s '
        f'(executing {t_exec:.1f} s, mkdocs {time.time() - t0 - t_exec:.1f} s) '
        f'-> {SITE.relative_to(ROOT)}/index.html'
    )
    return 0


def check() -> int:
    "Check site/ after a build: index page, a page per numbered notebook with its title, a rendered show_doc."
    problems, n_api = [], 0
    if not (SITE / 'index.html').exists():
        problems.append('site/index.html is missing (run `make docs`)')
    expected = [NBS / 'index.ipynb'] + components() if (NBS / 'index.ipynb').exists() else components()
    if not (NBS / 'index.ipynb').exists():
        problems.append('nbs/index.ipynb (the home page) is missing')
    for nb_path in expected:
        page = SITE / nb_path.with_suffix('.html').name
        if not page.exists():
            problems.append(f'{nb_path.name}: no page {page.relative_to(ROOT)}')
            continue
        html = page.read_text(encoding='utf-8')
        if CHECK_MARKER not in html:
            problems.append(f'{page.name}: not built by tools/build_docs.py')
            continue
        body = html.split('<article', 1)[-1]
        if 'jp-Cell' not in body:
            problems.append(f'{page.name}: the notebook content is empty')
        title, _ = title_of(nbformat.read(nb_path, as_version=4))
        if title and f'>{title}<' not in body.replace('\n', '') and title not in body:
            problems.append(f'{page.name}: the title "{title}" is not on the page')
        if re.search(r'^\s*#\s*\|', re.sub(r'<[^>]+>', '', body), re.M):
            problems.append(f'{page.name}: a raw `#|` directive is shown')
        # show_doc renders `---`, an h3 with the name and a code block with the signature
        n_api += len(
            re.findall(
                r'data-mime-type="text/markdown"[^>]*>\s*<hr\s*/?>\s*(?:<p>(?:(?!</p>).)*</p>\s*)?<h3', body, re.S
            )
        )
    if n_api == 0:
        problems.append('no rendered show_doc API reference on any page')
    sidebar = NBS / 'sidebar.yml'  # Quarto's menu; nbdev_docs rewrites it, so a stale one only warrants a note
    listed = sidebar.read_text() if sidebar.exists() else ''
    stale = [p.name for p in expected if p.name not in listed]
    if stale:
        print(
            f'docs-check note: nbs/sidebar.yml does not list {", ".join(stale)} '
            f'(refresh it with `.venv/bin/nbdev_sidebar --force`)'
        )
    if problems:
        print('docs-check FAILED:\n  ' + '\n  '.join(problems), file=sys.stderr)
        return 1
    print(f'docs-check: {len(expected)} pages ({len(expected) - 1} components), {n_api} show_doc entries rendered: OK')
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--check-only', action='store_true', help='check an existing site/ instead of building')
    ap.add_argument('--jobs', type=int, default=max(1, min(4, os.cpu_count() or 1)), help='notebooks executed at once')
    ap.add_argument('--timeout', type=int, default=900, help='seconds one cell may run')
    ap.add_argument('--no-cache', action='store_true', help='execute every notebook again')
    a = ap.parse_args(argv)
    if a.check_only:
        return check()
    return build(a.jobs, a.timeout, not a.no_cache)


if __name__ == '__main__':
    sys.exit(main())

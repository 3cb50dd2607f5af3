"""MkDocs hooks for the gcsa-fer docs (loaded by the mkdocs.yml that tools/build_docs.py writes).

mkdocs-jupyter writes Jupyter's `In [n]:` / `Out[n]:` prompts and a hidden "Copied!" notice into every cell; the
page hides them with CSS, but Material's search would index them as text. Empty them before the search plugin
reads the page (the notice's text comes back from CSS in tools/docs_assets/extra.css).
"""

import re

_PROMPT_RE = re.compile(r'(<div class="jp-(?:Input|Output)Prompt[^"]*">)[^<]*(</div>)')
_NOTICE_RE = re.compile(r'(<span class="notice" hidden(?:="")?>)\s*Copied!\s*(</span>)')


def on_page_content(html, page, config, files):
    return _NOTICE_RE.sub(r'\1\2', _PROMPT_RE.sub(r'\1\2', html))

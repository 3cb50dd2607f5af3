"""Open the explorer notebook in JupyterLab in headless Chromium, run all its cells as a user would, and save screenshots.

    .venv/bin/python tools/lab_screenshots.py [--out DIR] [--run-dir RUN] [--notebook nbs/explore.ipynb]

Serves a *copy* of the notebook (so JupyterLab's autosave never writes into nbs/) with JupyterLab on 127.0.0.1,
a free port and a random token, starts Chromium (`apt-get install -y chromium`) headless with a fresh profile,
and drives it over the Chrome DevTools Protocol with `websocket-client` (a dependency of jupyter_server, so no
extra package): JupyterLab is started with `expose_app_in_browser`, the script runs the command
`notebook:run-all-cells`, waits for the kernel to finish, checks that no cell raised, then scrolls through the
notebook taking screenshots. It also uses the widgets: it picks another dataset in the dropdown (a DOM event,
like a click) and moves the m slider (through the kernel), and takes screenshots after each.
Exit status 0 when every cell ran without error.
"""

from __future__ import annotations
import argparse
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--hide-scrollbars',
    '--remote-allow-origins=*',
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_for(pred, timeout: float, what: str, every: float = 0.5):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            v = pred()
            if v:
                return v
        except Exception:
            pass
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


class CDP:
    "A minimal Chrome DevTools Protocol client over one page's websocket."

    def __init__(self, ws_url: str):
        import websocket

        self.ws, self.i = websocket.create_connection(ws_url, timeout=120, suppress_origin=True), 0

    def call(self, method: str, **params):
        self.i += 1
        self.ws.send(json.dumps({'id': self.i, 'method': method, 'params': params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get('id') == self.i:
                if 'error' in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get('result', {})

    def js(self, expr: str, await_promise: bool = True):
        r = self.call('Runtime.evaluate', expression=expr, awaitPromise=await_promise, returnByValue=True)
        if 'exceptionDetails' in r:
            raise RuntimeError(
                f"JS error: {r['exceptionDetails'].get('exception', {}).get('description', r['exceptionDetails'])}"
            )
        return r.get('result', {}).get('value')

    def screenshot(self, path: Path):
        "Wait until every image is decoded and two frames have been painted, then save the viewport as PNG."
        self.js(
            "Promise.all([...document.images].map(i => i.decode().catch(() => null)))"
            ".then(() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))).then(() => true)"
        )
        # headless Chromium can leave tiles of a just-replaced image unpainted: nudging the scroll position repaints them
        self.js(
            "(() => { const o = document.querySelector('.jp-WindowedPanel-outer'); if (o) { o.scrollTop += 1; o.scrollTop -= 1; } })()",
            False,
        )
        self.js(
            "new Promise(r => setTimeout(() => requestAnimationFrame(() => requestAnimationFrame(r)), 300)).then(() => true)"
        )
        path.write_bytes(
            base64.b64decode(self.call('Page.captureScreenshot', format='png', captureBeyondViewport=False)['data'])
        )
        print(f"saved {path}")


NB = "(window.jupyterapp && [...window.jupyterapp.shell.widgets('main')].find(w => w.sessionContext && w.content))"
STATUS = f"""(() => {{ const nb = {NB}; if (!nb || !nb.content || !nb.sessionContext) return null;
  const cells = nb.content.widgets.filter(c => c.model.type === 'code');
  const k = nb.sessionContext.session && nb.sessionContext.session.kernel;
  return {{kernel: k ? k.status : 'none', n: cells.length,
           done: cells.filter(c => c.model.executionCount !== null).length,
           running: cells.filter(c => c.promptNode && c.promptNode.textContent.includes('*')).length,
           errors: cells.flatMap(c => c.model.outputs.toJSON().filter(o => o.output_type === 'error')
                                         .map(o => o.ename + ': ' + o.evalue))}}; }})()"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--notebook', default=str(REPO / 'nbs' / 'explore.ipynb'))
    ap.add_argument(
        '--out',
        default=str(REPO / 'screenshots'),
        help='folder for the PNGs (default: screenshots/ in the repository, ignored by git)',
    )
    ap.add_argument(
        '--run-dir', default='', help="set the notebook's run_dir parameter (default: the notebook's default)"
    )
    ap.add_argument(
        '--chromium', default=shutil.which('chromium') or shutil.which('chromium-browser') or '/usr/bin/chromium'
    )
    ap.add_argument('--size', default='1400,1100', help='window width,height in pixels')
    ap.add_argument('--timeout', type=float, default=300, help='seconds to wait for run-all')
    ap.add_argument(
        '--keep', action='store_true', help='keep the temporary folder with the JupyterLab and Chromium logs'
    )
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not Path(args.chromium).exists():
        sys.exit(f"chromium not found at {args.chromium}: apt-get update && apt-get install -y chromium")

    work = Path(tempfile.mkdtemp(prefix='lab_screens_'))
    serve, settings, profile = work / 'serve', work / 'settings', work / 'chromium-profile'
    serve.mkdir()
    profile.mkdir()
    nb = json.loads(Path(args.notebook).read_text())
    if args.run_dir:
        for c in nb['cells']:
            if 'parameters' in c.get('metadata', {}).get('tags', []):
                src = ''.join(c['source']).splitlines()
                c['source'] = '\n'.join(
                    f"run_dir = {str(Path(args.run_dir).resolve())!r}" if l.startswith('run_dir') else l for l in src
                )
    (serve / Path(args.notebook).name).write_text(json.dumps(nb))
    # JupyterLab user settings in a temporary folder: no news or update pop-ups over the screenshots
    (settings / '@jupyterlab' / 'apputils-extension').mkdir(parents=True)
    (settings / '@jupyterlab' / 'apputils-extension' / 'notification.jupyterlab-settings').write_text(
        json.dumps({'fetchNews': 'false', 'checkForUpdates': False})
    )

    port, token = free_port(), base64.b32encode(os.urandom(10)).decode().lower()
    env = {
        **os.environ,
        'JUPYTERLAB_SETTINGS_DIR': str(settings),
        'JUPYTERLAB_WORKSPACES_DIR': str(work / 'workspaces'),
        'PYTHONPATH': str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''),
    }
    jupyter = Path(sys.executable).parent / 'jupyter'
    lab = subprocess.Popen(
        [
            str(jupyter),
            'lab',
            '--no-browser',
            '--ip=127.0.0.1',
            f'--port={port}',
            f'--IdentityProvider.token={token}',
            f'--ServerApp.root_dir={serve}',
            '--LabApp.expose_app_in_browser=True',
            '--ServerApp.port_retries=0',
        ]
        + (['--allow-root'] if os.geteuid() == 0 else []),
        cwd=serve,
        env=env,
        stdout=open(work / 'lab.log', 'w'),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    chrome = None
    try:
        base = f'http://127.0.0.1:{port}'
        wait_for(
            lambda: urllib.request.urlopen(f'{base}/api/status?token={token}', timeout=2).status == 200,
            90,
            'JupyterLab to start',
        )
        w, h = args.size.split(',')
        chrome = subprocess.Popen(
            [
                args.chromium,
                *CHROMIUM_FLAGS,
                f'--user-data-dir={profile}',
                '--remote-debugging-port=0',
                f'--window-size={w},{h}',
                'about:blank',
            ],
            stdout=open(work / 'chromium.log', 'w'),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        devport = wait_for(lambda: (profile / 'DevToolsActivePort').read_text().split()[0], 30, 'Chromium to start')
        pages = wait_for(
            lambda: [
                t
                for t in json.load(urllib.request.urlopen(f'http://127.0.0.1:{devport}/json/list'))
                if t['type'] == 'page'
            ],
            30,
            'a Chromium page',
        )
        cdp = CDP(pages[0]['webSocketDebuggerUrl'])
        cdp.call('Page.enable')
        cdp.call('Runtime.enable')
        cdp.call('Emulation.setDeviceMetricsOverride', width=int(w), height=int(h), deviceScaleFactor=1, mobile=False)
        cdp.call('Page.navigate', url=f'{base}/lab/tree/{Path(args.notebook).name}?token={token}&reset')
        wait_for(lambda: cdp.js(f"!!({NB} && {NB}.sessionContext)", False), 120, 'the notebook to open')
        wait_for(lambda: (cdp.js(STATUS, False) or {}).get('kernel') == 'idle', 120, 'the kernel to be idle')
        cdp.js(f"{NB}.context.ready")
        cdp.js(f"window.jupyterapp.shell.activateById({NB}.id)", False)
        time.sleep(0.5)
        cdp.js("window.jupyterapp.commands.execute('notebook:enter-command-mode')")
        cdp.js("window.jupyterapp.commands.execute('application:toggle-left-area')")  # more room for the notebook
        cdp.screenshot(out / '00_opened.png')
        t0 = time.time()
        cdp.js("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        time.sleep(2)
        st = wait_for(
            lambda: (
                lambda s: (
                    s
                    if s and s['kernel'] == 'idle' and s['running'] == 0 and (s['done'] == s['n'] or s['errors'])
                    else None
                )
            )(cdp.js(STATUS, False)),
            args.timeout,
            'run-all to finish',
            every=1.0,
        )
        print(
            f"run all: {st['done']}/{st['n']} code cells in {time.time() - t0:.0f} s, errors: {st['errors'] or 'none'}"
        )
        time.sleep(2)  # let the widgets render

        def scroll_shots(prefix: str):
            "Screenshots from the top to the bottom of the notebook, one viewport apart."
            cdp.js(f"{NB}.content.scrollToItem ? {NB}.content.scrollToItem(0, 'start') : null")
            time.sleep(0.5)
            top, i = 0, 0
            while True:
                cdp.js(
                    f"(() => {{ const o = {NB}.content.node.querySelector('.jp-WindowedPanel-outer') || {NB}.content.node; o.scrollTop = {top}; }})()",
                    False,
                )
                time.sleep(1.0)
                cdp.screenshot(out / f'{prefix}_{i:02d}.png')
                sh, ch = cdp.js(
                    f"(() => {{ const o = {NB}.content.node.querySelector('.jp-WindowedPanel-outer') || {NB}.content.node; return [o.scrollHeight, o.clientHeight]; }})()",
                    False,
                )
                if top + ch >= sh - 5 or i >= 14:
                    break
                top += int(ch * 0.9)
                i += 1

        scroll_shots('01_run_all')

        # a user changes the fusion weights and the dataset
        def run_code(code: str):
            return cdp.js(f"""(async () => {{ const k = {NB}.sessionContext.session.kernel;
                 const f = k.requestExecute({{code: {json.dumps(code)}, silent: false, store_history: false}}); const r = await f.done;
                 return r.content.status; }})()""")

        widget_area = f"{NB}.content.node.querySelector('.widget-vbox')"
        cdp.js(f"{widget_area} && {widget_area}.scrollIntoView({{block: 'start'}})", False)
        print('m slider ->', run_code('w_m.value = 5; w_n.value = 1'))
        time.sleep(2)
        cdp.js(
            f"(() => {{ const o = {NB}.content.node.querySelector('.widget-vbox'); const p = [...o.querySelectorAll('.widget-slider')][1]; p && p.scrollIntoView({{block: 'center'}}); }})()",
            False,
        )
        time.sleep(1)
        cdp.screenshot(out / '02_fusion_m5_n1.png')
        picked = cdp.js(
            f"""(() => {{ const sel = [...{NB}.content.node.querySelectorAll('.widget-dropdown select')][0];
                 if (!sel) return 'no dropdown'; sel.value = [...sel.options].find(o => o.textContent === 'ravdess').value;
                 sel.dispatchEvent(new Event('change', {{bubbles: true}})); return 'ravdess'; }})()""",
            False,
        )
        print('dataset ->', picked)
        time.sleep(1)
        wait_for(lambda: cdp.js(STATUS, False)['kernel'] == 'idle', 60, 'the kernel after the dataset change')
        time.sleep(4)
        cdp.js(f"{widget_area} && {widget_area}.scrollIntoView({{block: 'start'}})", False)
        time.sleep(3)
        cdp.screenshot(out / '03_dataset_ravdess.png')
        errs = run_code("assert not state['errors'], state['errors']")
        print('widget callbacks:', 'no errors' if errs == 'ok' else 'errors (see the notebook)')
        return 0 if not st['errors'] and st['done'] == st['n'] and errs == 'ok' else 1
    finally:
        for p in (chrome, lab):
            if p is not None and p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
        if args.keep:
            print(f"kept {work} (lab.log, chromium.log)")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())

"Killing the parent during a multi-process cache build leaves no worker behind (issue: reliability)."

import os
import signal
import subprocess
import sys
import time
from gcsa_fer.files import pid_alive

SCRIPT = r'''
import sys, time
from gcsa_fer.data import SyntheticAV
from gcsa_fer.cache import build_cache
class Slow(SyntheticAV):
    def raw_item(self, i):
        time.sleep(0.5); return super().raw_item(i)
print('start', flush=True)
build_cache(Slow(200), sys.argv[1], n_workers=2, progress=False)
'''


def test_sigkill_during_cache_build_leaves_no_worker(tmp_path):
    p = subprocess.Popen([sys.executable, '-c', SCRIPT, str(tmp_path / 'cache')], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == 'start'
    children = []
    for _ in range(100):  # wait for both workers
        out = subprocess.run(['pgrep', '-P', str(p.pid)], capture_output=True, text=True).stdout.split()
        children = [int(c) for c in out]
        if len(children) >= 2:
            break
        time.sleep(0.1)
    assert len(children) >= 2, children
    time.sleep(1.0)  # the workers are busy with items
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(pid_alive(c) for c in children):
        time.sleep(0.2)
    assert not [c for c in children if pid_alive(c)], "workers outlived the killed parent"
    assert not any((tmp_path / 'cache').glob('*/COMPLETE'))  # and nothing claims to be a finished cache

"""Quick variants of the face-pixel recipe on the London dev set, outside the trainer (a look for larger gains before a full search).

Each variant trains RHCNN (the library's, `norm='image'`, GCSA unless `att=none`) from scratch on the training subjects of
each of 5 GroupKFold folds (no validation split: the last epoch is kept), AdamW + one-cycle, label smoothing 0.1, the
library's `face_augmentation`, and tests on the held-out subjects with a horizontal-flip average. Options (key=value):
size (crop side, 64), ep (epochs, 30), att (gcsa), nb (residual blocks, 2), ks (depthwise kernel, 3), width (32),
seeds (an ensemble of this many seeds, 1), src (face margin of the crops, 0.1), lr (3e-3).

    python tools/faces_quick_variants.py size=64 ep=30 [att=none ...]     # prints one line: mean +- std over the folds
"""
import json, sys, time
from pathlib import Path
import numpy as np, torch
import torch.nn.functional as F
from sklearn.model_selection import GroupKFold
from gcsa_fer.core import PreprocessConfig
from gcsa_fer.faces import FaceFolder
from gcsa_fer.rhcnn import RHCNN
from gcsa_fer.preprocess import face_augmentation

def crops(margin: float, cache=Path('/tmp/gcsa_faces_quick')):
    f = cache / f'crops128_{margin}.npz'
    if not f.exists():
        cache.mkdir(parents=True, exist_ok=True)
        ds = FaceFolder(None, 'all', cfg=PreprocessConfig(face_size=128, face_margin=margin))
        X = np.stack([ds.raw_item(i)['frames'][0].numpy() for i in range(len(ds))])
        np.savez_compressed(f, X=X, y=np.array([r['label'] for r in ds.rows]), s=np.array([r['speaker'] for r in ds.rows]))
    d = np.load(f); return torch.tensor(d['X']), d['y'], d['s']

def main(args):
    a = dict(x.split('=') for x in args)
    size, width, nb, ks = int(a.get('size', 64)), int(a.get('width', 32)), int(a.get('nb', 2)), int(a.get('ks', 3))
    ep, att, seeds, lr = int(a.get('ep', 30)), a.get('att', 'gcsa'), int(a.get('seeds', 1)), float(a.get('lr', 3e-3))
    torch.set_num_threads(2)
    X, y, s = crops(float(a.get('src', 0.1)))
    X = F.interpolate(X.float(), size=size, mode='area').round().clamp(0, 255).to(torch.uint8)
    yb = torch.tensor((y == 4).astype(np.int64)); aug = face_augmentation(size)
    accs, t0 = [], time.time()
    for tr, te in GroupKFold(5).split(X, y, s):
        P = 0
        for seed in range(seeds):
            torch.manual_seed(seed)
            m = RHCNN(2, att, width=width, n_blocks=nb, kernel_size=ks, norm='image', pool='grid')
            opt = torch.optim.AdamW(m.parameters(), lr=lr, weight_decay=1e-2)
            sch = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=ep * int(np.ceil(len(tr) / 16)))
            for e in range(ep):
                m.train(); perm = np.random.RandomState(seed * 1000 + e).permutation(tr)
                for i in range(0, len(perm), 16):
                    b = perm[i:i + 16]
                    loss = F.cross_entropy(m(torch.stack([aug(X[j][None]) for j in b])), yb[b], label_smoothing=0.1)
                    opt.zero_grad(); loss.backward(); opt.step(); sch.step()
            m.eval()
            with torch.no_grad(): xt = X[te][:, None]; P = P + m(xt).softmax(-1) + m(xt.flip(-1)).softmax(-1)
        accs.append(float((P.argmax(-1).numpy() == yb[te].numpy()).mean()))
    print(json.dumps(a), 'acc %.3f +- %.3f' % (np.mean(accs), np.std(accs, ddof=1)), [round(v, 3) for v in accs], '%.0fs' % (time.time() - t0), flush=True)

if __name__ == '__main__': main(sys.argv[1:])

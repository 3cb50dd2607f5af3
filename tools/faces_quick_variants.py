"""Quick variants of the face-pixel recipe on the London dev set, outside the trainer (a look for larger gains before a full search).

Each variant trains RHCNN (the library's, `norm='image'`, `pool='grid'`) from scratch on the training subjects of each of
the 5 folds of `faces.subject_folds` (no validation split: the last epoch is kept) with AdamW + one-cycle and label
smoothing, and tests on the held-out subjects with a horizontal-flip average. Printed per variant: the mean ± std test
accuracy of the single models (folds x seeds), the accuracy of the seeds' ensemble, and the within-subject accuracy
of the ensemble (`face_training.within_subject_accuracy`: each test person's two photos compared with each other, a
diagnostic, not a single photo's accuracy). Options (key=value, defaults in brackets):

- model: size (crop side, 64), width (32), nb (residual blocks, 2), ks (depthwise kernel, 3), att (gcsa), grid (side of
  the pooled grid, 4), drop (dropout, 0.2)
- training: ep (epochs, 30), lr (3e-3), wd (weight decay, 1e-2), ls (label smoothing, 0.1), bs (batch, 16), seeds (3)
- data: src (face margin of the crops, 0.1), grey (0/1: grey crops), slo (smallest area of the random resized crop, 0.7),
  rot (rotation, degrees, 10), jit (colour jitter, 0.3)
- extra losses: mix (mixup alpha, 0: off), pair (weight of a margin loss that ranks each training subject's smiling
  photo above their neutral one, batches made of whole subjects; 0: off), ema (EMA decay of the weights; 0: off)
- mouth: probability that a training photo gets the lower-middle of another training photo (mouth and cheeks, rows
  58-100 %, columns 22-78 % of the crop) pasted in, and that photo's label: new pairings of a face and a mouth, so
  that the rest of a face (who it is) cannot decide the label (0: off)
- thr (torch threads, 1)

    python tools/faces_quick_variants.py ep=100 pair=1     # prints one line per variant
"""

import json
import sys
import time
from pathlib import Path
import numpy as np
import torch
import torch.nn.functional as F
from gcsa_fer.core import PreprocessConfig
from gcsa_fer.faces import FaceFolder, subject_folds
from gcsa_fer.face_training import within_subject_accuracy
from gcsa_fer.preprocess import face_augmentation
from gcsa_fer.rhcnn import RHCNN

DEFAULTS = dict(
    size=64,
    width=32,
    nb=2,
    ks=3,
    att='gcsa',
    grid=4,
    drop=0.2,
    ep=30,
    lr=3e-3,
    wd=1e-2,
    ls=0.1,
    bs=16,
    seeds=3,
    src=0.1,
    grey=0,
    slo=0.7,
    rot=10.0,
    jit=0.3,
    mix=0.0,
    pair=0.0,
    ema=0.0,
    mouth=0.0,
    thr=1,
)


def crops(margin: float, cache=Path('/tmp/gcsa_faces_quick')):
    "128x128 RGB face crops of the London dev photos (uint8, N x 3 x 128 x 128), labels and subjects; cached on disk."
    f = cache / f'crops128_{margin}.npz'
    if not f.exists():
        cache.mkdir(parents=True, exist_ok=True)
        ds = FaceFolder(None, 'all', cfg=PreprocessConfig(face_size=128, face_margin=margin))
        X = np.stack([ds.raw_item(i)['frames'][0].numpy() for i in range(len(ds))])
        np.savez_compressed(
            f, X=X, y=np.array([r['label'] for r in ds.rows]), s=np.array([r['speaker'] for r in ds.rows])
        )
    d = np.load(f)
    return torch.tensor(d['X']), d['y'], d['s']


class GridRHCNN(RHCNN):
    "RHCNN whose feature map is pooled into a `grid` x `grid` grid of means (the library's `pool='grid'` is 4 x 4)."

    def __init__(self, *args, grid: int = 4, **kwargs):
        super().__init__(*args, pool='grid', **kwargs)
        self.grid = grid
        self.head = torch.nn.Linear(self.channels * grid * grid, self.head.out_features)

    def forward_frames(self, x):
        B, T = x.shape[:2]
        return self.head(self.dropout(F.adaptive_avg_pool2d(self.features(x), self.grid).flatten(1))).view(B, T, -1)


def make_model(o) -> RHCNN:
    kw = dict(width=o['width'], n_blocks=o['nb'], kernel_size=o['ks'], norm='image', dropout=o['drop'])
    return RHCNN(2, o['att'], pool='grid', **kw) if o['grid'] == 4 else GridRHCNN(2, o['att'], grid=o['grid'], **kw)


def train_one(o, X, yb, s, tr, seed):
    torch.manual_seed(seed)
    rs = np.random.RandomState(seed)
    aug = face_augmentation(o['size'], scale=(o['slo'], 1.0), rotation=o['rot'], jitter=o['jit'])
    m = make_model(o)
    avg = (
        torch.optim.swa_utils.AveragedModel(m, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(o['ema']))
        if o['ema']
        else None
    )
    opt = torch.optim.AdamW(m.parameters(), lr=o['lr'], weight_decay=o['wd'])
    sch = torch.optim.lr_scheduler.OneCycleLR(opt, o['lr'], total_steps=o['ep'] * int(np.ceil(len(tr) / o['bs'])))
    photos = {}
    for i in tr:
        photos.setdefault(s[i], []).append(i)
    subjects = sorted(photos)
    if o['pair'] and any(len(photos[sv]) != 2 or len(set(yb[photos[sv]].tolist())) != 2 for sv in subjects):
        raise SystemExit("pair needs exactly one neutral and one smiling photo per training subject")
    for _ in range(o['ep']):
        m.train()
        order = [i for sv in rs.permutation(subjects) for i in photos[sv]] if o['pair'] else rs.permutation(tr)
        for i in range(0, len(order), o['bs']):
            b = np.array(order[i : i + o['bs']])
            xs, t = X[b], yb[b]
            if o['mouth']:
                swap = torch.from_numpy(rs.rand(len(b)) < o['mouth'])
                donor = torch.from_numpy(rs.choice(tr, len(b)))
                S = o['size']
                r0, c0, c1 = int(0.58 * S), int(0.22 * S), int(0.78 * S)
                xs, t = xs.clone(), t.clone()
                xs[swap, :, r0:, c0:c1] = X[donor[swap]][:, :, r0:, c0:c1]
                t[swap] = yb[donor[swap]]
            xb = torch.stack([aug(x[None]) for x in xs])
            if o['mix']:
                lam = float(rs.beta(o['mix'], o['mix']))
                pi = torch.randperm(len(b))
                out = m((lam * xb.float() + (1 - lam) * xb[pi].float()).round().to(torch.uint8))
                loss = lam * F.cross_entropy(out, t, label_smoothing=o['ls']) + (1 - lam) * F.cross_entropy(
                    out, t[pi], label_smoothing=o['ls']
                )
            else:
                out = m(xb)
                loss = F.cross_entropy(out, t, label_smoothing=o['ls'])
            if o[
                'pair'
            ]:  # consecutive photos are one subject's two: the smiling one should score higher by a margin of 1
                z = (out[:, 1] - out[:, 0]).view(-1, 2)
                tt = t.view(-1, 2)
                loss = loss + o['pair'] * F.softplus(1.0 - (tt[:, 1] - tt[:, 0]).float() * (z[:, 1] - z[:, 0])).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sch.step()
            if avg is not None:
                avg.update_parameters(m)
    return (avg.module if avg is not None else m).eval()


def main(args):
    given = dict(x.split('=', 1) for x in args)
    unknown = set(given) - set(DEFAULTS)
    if unknown:
        raise SystemExit(f"unknown option(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    o = {k: type(d)(given.get(k, d)) for k, d in DEFAULTS.items()}
    torch.set_num_threads(o['thr'])
    X, y, s = crops(o['src'])
    X = F.interpolate(X.float(), size=o['size'], mode='area').round().clamp(0, 255).to(torch.uint8)
    if o['grey']:
        X = (
            (X.float() * torch.tensor([0.299, 0.587, 0.114])[:, None, None])
            .sum(1, keepdim=True)
            .round()
            .to(torch.uint8)
            .expand(-1, 3, -1, -1)
            .contiguous()
        )
    yb = torch.tensor((y == 4).astype(np.int64))
    single, ens, within, t0 = [], [], [], time.time()
    for k in range(1, 6):
        te = subject_folds(s, k)['test']
        tr = np.setdiff1d(np.arange(len(y)), te)
        P = 0
        for seed in range(o['seeds']):
            net = train_one(o, X, yb, s, tr, seed)
            with torch.no_grad():
                xt = X[te][:, None]
                p = (net(xt).softmax(-1) + net(xt.flip(-1)).softmax(-1)) / 2
            single.append(float((p.argmax(-1) == yb[te]).float().mean()))
            P = P + p / o['seeds']
        ens.append(float((P.argmax(-1) == yb[te]).float().mean()))
        within.append(within_subject_accuracy(P.numpy(), yb[te].numpy(), s[te]))
    print(
        json.dumps(given),
        'single %.3f +- %.3f' % (np.mean(single), np.std(single, ddof=1)),
        'ensemble %.3f' % np.mean(ens),
        'within-subject %.3f' % np.mean(within),
        [round(v, 3) for v in ens],
        '%.0fs' % (time.time() - t0),
        flush=True,
    )


if __name__ == '__main__':
    main(sys.argv[1:])

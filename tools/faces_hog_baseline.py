"""A classical baseline for the London dev faces: HOG descriptors + logistic regression, 5 folds by subject.

The pixel baseline that `gcsa_fer train` prints beside every fold (logistic regression on 32x32 grey pixels) is the
floor; this is a stronger, hand-crafted reference for what a linear model reaches on these 102 photos without any
learned features: scikit-image's HOG (9 orientations, 2x2-cell blocks) on grey face crops of the library's detector,
at a few crop sizes and cell sizes, scikit-learn's LogisticRegression at three strengths. Every setting is printed
(nothing is chosen on test: read the spread, not the maximum). The folds are `faces.subject_folds`' (those of
`gcsa_fer train`): each fold's test subjects are scored by a model fitted on all the others (training and validation).

    python tools/faces_hog_baseline.py > results/faces/hog-baseline.txt
"""

import platform
import subprocess
import cv2
import numpy as np
from skimage.feature import hog
from sklearn.linear_model import LogisticRegression
from gcsa_fer.core import PreprocessConfig
from gcsa_fer.faces import FaceFolder, subject_folds


def grey_crops(size: int = 128, margin: float = 0.1):
    ds = FaceFolder(None, 'all', cfg=PreprocessConfig(face_size=size, face_margin=margin))
    X = np.stack(
        [
            cv2.cvtColor(np.ascontiguousarray(ds.raw_item(i)['frames'][0].permute(1, 2, 0).numpy()), cv2.COLOR_RGB2GRAY)
            for i in range(len(ds))
        ]
    )
    return X, np.array([r['label'] for r in ds.rows]), np.array([r['speaker'] for r in ds.rows])


def main():
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True).stdout.strip()
    print(
        f"# python tools/faces_hog_baseline.py at commit {commit} on {platform.machine()}, {platform.python_version()}; "
        "test accuracy over 5 folds by subject, mean ± std"
    )
    G, y, s = grey_crops()
    tests = [subject_folds(s, k)['test'] for k in range(1, 6)]
    folds = [(np.setdiff1d(np.arange(len(y)), te), te) for te in tests]
    for side, cell in [(64, 8), (128, 8), (128, 16), (160, 8)]:
        F = np.stack(
            [
                hog(
                    cv2.resize(g, (side, side), interpolation=cv2.INTER_AREA),
                    orientations=9,
                    pixels_per_cell=(cell, cell),
                    cells_per_block=(2, 2),
                )
                for g in G
            ]
        )
        for C in (0.1, 1.0, 10.0):
            acc = [
                float((LogisticRegression(C=C, max_iter=5000).fit(F[tr], y[tr]).predict(F[te]) == y[te]).mean())
                for tr, te in folds
            ]
            print(
                f"HOG {side}px, {cell}px cells ({F.shape[1]} features), LR C={C:<4}: {100 * np.mean(acc):.1f} ± {100 * np.std(acc, ddof=1):.1f} %  "
                f"folds {[round(100 * a, 1) for a in acc]}",
                flush=True,
            )


if __name__ == '__main__':
    main()

"""CorenetClassifier vs scikit-learn's MLPClassifier on the bundled digits, default settings.

Run: python benchmarks/bench_sklearn.py   (prints a Markdown table; seeds 0..4)
"""
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from corenet.sklearn import CorenetClassifier


def main(seeds=range(5)):
    X, y = load_digits(return_X_y=True)
    rows = []
    for seed in seeds:
        Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.25, random_state=seed)
        for name, est in (("corenet", CorenetClassifier(random_state=seed)),
                          ("sklearn", MLPClassifier(random_state=seed))):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                t = time.perf_counter()
                est.fit(Xtr, ytr)
                elapsed = time.perf_counter() - t
            rows.append((seed, name, est.score(Xte, yte), elapsed, est.n_iter_))
    print("| seed | estimator | test accuracy | fit time (s) | epochs |")
    print("|---|---|---|---|---|")
    for seed, name, acc, t, it in rows:
        print(f"| {seed} | {name} | {acc:.4f} | {t:.2f} | {it} |")
    for name in ("corenet", "sklearn"):
        acc = np.mean([r[2] for r in rows if r[1] == name])
        t = np.median([r[3] for r in rows if r[1] == name])
        print(f"\n{name}: mean accuracy {acc:.4f}, median fit time {t:.2f} s")


if __name__ == "__main__":
    main()

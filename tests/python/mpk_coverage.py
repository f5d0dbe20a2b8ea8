#!/usr/bin/python3
"""Print mpk's coverage of scikit-learn's estimators.

    PYTHONPATH=python nice /usr/bin/python3 tests/python/mpk_coverage.py [-v]

The set counted is the one of issue 9: every class of all_estimators() that
_construct_instance builds, that fits on mpk_zoo's small dataset and that
pickle round-trips.  A class passes a mode when it saves, loads, holds the
same state bit for bit, gives identical outputs for every method in
mpk_zoo.METHODS, and re-encodes to the same bytes.
"""

import os
import sys
import traceback
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "python"))

import mpk_zoo  # noqa: E402


def main():
    verbose = "-v" in sys.argv
    z = mpk_zoo.zoo()
    names = mpk_zoo.in_set(z)
    outside = sorted(n for n, c in z.items() if not isinstance(c, mpk_zoo.Case))
    ok = {"compact": [], "nested": []}
    bad = {}
    for name in names + sorted(n for n in z if n.startswith("x:")):
        case = z[name]
        for arrays in ("compact", "nested"):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    mpk_zoo.roundtrip(mpk_zoo.fitted(case), case.X_test, arrays)
                ok[arrays].append(name)
            except Exception as e:
                bad.setdefault(name, f"{arrays}: {type(e).__name__}: {str(e)[:200]}")
                if verbose:
                    traceback.print_exc()
    print(f"all_estimators(): {len(z) - sum(n.startswith('x:') for n in z)}; "
          f"outside the set (construct/fit/pickle fails): {len(outside)}")
    for n in outside:
        print(f"  outside: {n}: {z[n]}")
    for arrays in ("compact", "nested"):
        n_ok = len([n for n in ok[arrays] if not n.startswith("x:")])
        print(f"{arrays}: {n_ok}/{len(names)} = {100.0 * n_ok / len(names):.1f}%")
    extra = sorted(n for n in z if n.startswith("x:"))
    print(f"extra cases: {len([n for n in ok['nested'] if n.startswith('x:') and n in ok['compact']])}/{len(extra)}")
    for n, why in sorted(bad.items()):
        print(f"  FAIL {n}: {why}")


if __name__ == "__main__":
    main()

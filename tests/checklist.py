# SPDX-License-Identifier: LGPL-2.1-or-later
"""Collects failed checks so that a test script reports all of them in one run."""
import sys

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    return cond


def finish():
    if failures:
        print(f"{len(failures)} checks failed")
        sys.exit(1)
    print("all checks passed")

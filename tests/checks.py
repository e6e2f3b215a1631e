# SPDX-License-Identifier: LGPL-2.1-or-later
"""The check-and-report helper the Python tests share: every check prints a
line (ok/FAIL) and a failure is remembered, so one run shows every failing
check, and the test exits non-zero at the end if `failures` is not empty."""

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)

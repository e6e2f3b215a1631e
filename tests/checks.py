# SPDX-License-Identifier: LGPL-2.1-or-later
"""The one harness the Python tests share. Every check prints a line (ok/FAIL)
and a failure is remembered, so one run shows every failing check; finish()
exits non-zero if any check failed. A check that needs what came before
(a file that was never written) may still raise: the exception fails the test
as well."""

import contextlib
import subprocess
import sys
import tempfile

failures = []


def check(ok, what, detail=None):
    """Records one check; detail (anything printable) is shown under the line,
    so a failure says what was seen. Returns ok, for checks that guard others."""
    ok = bool(ok)
    line = ("ok   " if ok else "FAIL ") + what
    if detail is not None:
        line += "\n       -> " + str(detail)
    print(line, flush=True)
    if not ok:
        failures.append(what)
    return ok


def finish():
    """Ends the test: exit status 1 and the list of failed checks if any failed."""
    if failures:
        print(f"{len(failures)} check(s) failed:")
        for what in failures:
            print("  " + what)
        sys.exit(1)
    print("all checks passed")


def stacks_of(pid):
    """Every thread's stack of a running process (gdb, where installed)."""
    try:
        trace = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "thread apply all bt"],
                               capture_output=True, text=True, timeout=120)
        return trace.stdout + trace.stderr
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"(no stacks: {e})"


def run(argv, timeout=120, text=True, **kwargs):
    """subprocess.run with a time bound and captured output. A run that hangs
    is shown with every thread's stack before TimeoutExpired is raised, which
    fails the test: a hang is never a pass."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=text,
                            **kwargs)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"HANG after {timeout} s: {argv}\n{stacks_of(proc.pid)}", flush=True)
        proc.kill()
        proc.communicate()
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def gst_launch(*description, timeout=120, **kwargs):
    """Runs gst-launch-1.0 on the description's words; returns the
    CompletedProcess (returncode, stdout, stderr as text)."""
    return run(["gst-launch-1.0", "-q", *description], timeout=timeout, **kwargs)


def expect_error(got, what, *phrases, rc=None):
    """Checks that something failed and said why. got is a CompletedProcess
    (it failed: rc, or any non-zero status if rc is None; the phrases are in
    its stderr) or a callable (it raised; the phrases are in the
    exception's text). Returns the message."""
    if callable(got):
        try:
            got()
        except Exception as e:  # noqa: BLE001: any exception is the failure expected
            message = f"{type(e).__name__}: {e}"
            failed = True
        else:
            message, failed = "(no exception)", False
    else:
        message = got.stderr or ""
        failed = got.returncode != 0 if rc is None else got.returncode == rc
        if not failed:
            message = f"exit status {got.returncode}: {message}"
    missing = [p for p in phrases if p not in message]
    check(failed and not missing, what,
          message[-2000:] if (not failed or missing) else message[:160])
    return message


@contextlib.contextmanager
def tmp_dir(prefix="vs-test-"):
    """A scratch directory removed afterwards, whatever happens."""
    with tempfile.TemporaryDirectory(prefix=prefix) as d:
        yield d


"""How the examples end: print each check, then the verdict.

Each example imports this from its own folder (Python puts a script's
folder on `sys.path`).
"""

from __future__ import annotations


def report(checks: list[tuple[bool, str]]) -> int:
    """Prints every `(passed, text)` check and a summary line; returns the
    exit status (0 if all passed, else 1)."""
    for ok, text in checks:
        print(f"  {'ok  ' if ok else 'FAIL'} {text}")
    passed = all(ok for ok, _ in checks)
    print("all checks passed" if passed else "SOME CHECKS FAILED")
    return 0 if passed else 1

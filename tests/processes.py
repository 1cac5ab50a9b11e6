"""Helpers for the tests that start and signal real processes."""


def gone(pid: int) -> bool:
    """No such process, or a zombie waiting for a reaper (it runs nothing and holds no file)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True

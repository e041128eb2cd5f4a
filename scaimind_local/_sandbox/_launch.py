"""A root coordinator's way into the sandbox: stage the bind sources, drop to nobody, exec bwrap.

bubblewrap started by root maps the sandbox's user onto root itself; started by an unprivileged
user it maps it onto that user, but can then bind only what that user may reach (a Python under
/root is not). So a root coordinator runs this script (`python -I -S _launch.py SPEC`) instead:
in a private mount namespace of its own it opens every path to expose, mounts a small tmpfs on
`SPEC.stage` (seen by nobody else) and bind-mounts each path there, then becomes `SPEC.uid`
(65534, nobody) and execs `SPEC.argv`, a bwrap command whose sources are the staged copies.
Nothing of the host changes: the staging disappears with the namespace.
"""

from __future__ import annotations

import json
import os
import stat
import sys


def main(spec: dict) -> None:
    """Stage `spec["sources"]` under `spec["stage"]`, drop privileges and exec `spec["argv"]`."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _kernel  # beside this script

    _kernel.unshare(_kernel.CLONE_NEWNS)
    _kernel.mount(None, "/", None, _kernel.MS_REC | _kernel.MS_PRIVATE)  # nothing propagates out
    # opened in the new namespace (a bind source must be in it) and before the stage hides /tmp
    fds = [os.open(path, os.O_PATH | os.O_CLOEXEC) for path in spec["sources"]]
    stage = spec["stage"]
    _kernel.mount("tmpfs", stage, "tmpfs", _kernel.MS_NOSUID | _kernel.MS_NODEV, "mode=0755")
    for index, fd in enumerate(fds):
        target = f"{stage}/{index}"
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            os.mkdir(target)
        else:
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))
        _kernel.mount(f"/proc/self/fd/{fd}", target, None, _kernel.MS_BIND | _kernel.MS_REC)
        os.close(fd)
    uid, gid = int(spec["uid"]), int(spec["gid"])
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    os.execv(spec["argv"][0], spec["argv"])


if __name__ == "__main__":
    try:
        main(json.loads(sys.argv[1]))
    except Exception as exc:  # one line on stderr: the coordinator shows it as the reason
        print(f"scaimind sandbox launcher: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)

"""Linux primitives the sandbox needs and Python 3.11 lacks: unshare, mount, capabilities, seccomp.

Stdlib only (ctypes on libc), trusted code: imported by the fork server inside the sandbox (to
give each program namespaces of its own) and by the root launcher (to stage bind mounts).
Every call raises OSError naming the step, so a failed setup says which part of it failed.
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080
NAMESPACE_FLAGS = (
    CLONE_NEWNS
    | CLONE_NEWCGROUP
    | CLONE_NEWUTS
    | CLONE_NEWIPC
    | CLONE_NEWUSER
    | CLONE_NEWPID
    | CLONE_NEWNET
    | CLONE_NEWTIME
)

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000

_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_CAPABILITY_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)
_libc.unshare.argtypes = [ctypes.c_int]
_libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
_libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def unshare(flags: int) -> None:
    """Move the calling process into new namespaces (`CLONE_NEW*` flags)."""
    _check(_libc.unshare(flags), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    """mount(2); `source` may be a /proc/self/fd/N path for a bind of an open descriptor."""
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            flags,
            data.encode() if data else None,
        ),
        f"mount {fstype or 'bind'} on {target}",
    )


def map_own_ids() -> None:
    """In a fresh user namespace: map our own uid and gid onto themselves (no root inside)."""
    uid, gid = os.getuid(), os.getgid()
    for name, text in (
        ("setgroups", "deny"),
        ("uid_map", f"{uid} {uid} 1"),
        ("gid_map", f"{gid} {gid} 1"),
    ):
        fd = os.open(f"/proc/self/{name}", os.O_WRONLY)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def drop_capabilities() -> None:
    """Give up every capability: the bounding and ambient sets, then effective/permitted."""
    cap = 0
    while _libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
        cap += 1
    if ctypes.get_errno() != 22 or cap == 0:  # EINVAL marks the end of the known capabilities
        _check(-1, "drop the capability bounding set")
    _check(_libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient caps")
    header = _CapHeader(_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset")


def no_new_privs() -> None:
    """Neither exec nor anything else may grant privileges again (needed for seccomp too)."""
    _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


# --- seccomp ---------------------------------------------------------------------------------

_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_BIT = 0x40000000
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_EPERM, _ENOSYS = 1, 38
_LD_ABS_W, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06

DENIED_SYSCALLS_X86_64 = {
    # leaving or reshaping the namespaces and the file system view
    "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "unshare": 272,
    "setns": 308, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431,
    "fsmount": 432, "fspick": 433, "mount_setattr": 442,
    "open_by_handle_at": 304, "name_to_handle_at": 303,
    # reading or steering another process
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312,
    "pidfd_getfd": 438,
    # kernel state shared beyond the program: keyrings, the log, accounting, swap, reboot
    "add_key": 248, "request_key": 249, "keyctl": 250, "syslog": 103, "acct": 163,
    "swapon": 167, "swapoff": 168, "reboot": 169, "quotactl": 179,
    "kexec_load": 246, "kexec_file_load": 320,
    "init_module": 175, "finit_module": 313, "delete_module": 176,
    # large kernel attack surfaces no test program needs
    "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "fanotify_init": 300,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
}  # fmt: skip
"""Refused with EPERM; `clone` with a CLONE_NEW* flag too, and `clone3` answers ENOSYS (so libc
falls back to `clone`, whose flags a filter can read)."""
_SYS_CLONE, _SYS_CLONE3 = 56, 435


def seccomp_program() -> bytes | None:
    """The BPF filter (struct sock_filter[]) for this machine, or None where none is written."""
    if platform.machine() != "x86_64":
        return None
    code: list[tuple[int, int, str | int, str | int]] = []  # (op, k, jump-true, jump-false)

    def op(opcode: int, k: int, jt: str | int = 0, jf: str | int = 0) -> None:
        code.append((opcode, k, jt, jf))

    op(_LD_ABS_W, 4)  # seccomp_data.arch
    op(_JEQ, _AUDIT_ARCH_X86_64, 1, 0)
    op(_RET, _RET_KILL_PROCESS)  # another ABI (i386 via int 0x80) would renumber every call
    op(_LD_ABS_W, 0)  # seccomp_data.nr
    op(_JGE, _X32_BIT, "deny")
    for number in DENIED_SYSCALLS_X86_64.values():
        op(_JEQ, number, "deny")
    op(_JEQ, _SYS_CLONE3, "nosys")
    op(_JEQ, _SYS_CLONE, 0, "allow")
    op(_LD_ABS_W, 16)  # clone's flags: the low half of seccomp_data.args[0]
    op(_JSET, NAMESPACE_FLAGS, "deny", "allow")
    labels = {"allow": len(code), "deny": len(code) + 1, "nosys": len(code) + 2}
    op(_RET, _RET_ALLOW)
    op(_RET, _RET_ERRNO | _EPERM)
    op(_RET, _RET_ERRNO | _ENOSYS)

    def offset(at: int, target: str | int) -> int:
        return labels[target] - at - 1 if isinstance(target, str) else target

    return b"".join(
        struct.pack("<HBBI", opcode, offset(i, jt), offset(i, jf), k)
        for i, (opcode, k, jt, jf) in enumerate(code)
    )


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install_seccomp(program: bytes) -> None:
    """Apply a seccomp filter to the calling thread and its future children, for good."""
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.addressof(buffer))
    _check(
        _libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0),
        "seccomp",
    )

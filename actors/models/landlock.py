"""Linux Landlock through its three system calls (ctypes, no dependency): a process restricts
itself, and every process it starts, to the files and folders it names.

Landlock needs no root and cannot be undone by the restricted process. The access masks below
follow the kernel's ``include/uapi/linux/landlock.h``; a kernel handles only the rights its ABI
knows, so every mask is cut to the running kernel's ABI before use.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Generic system call numbers: the same on x86_64 and arm64.
_SYS_CREATE_RULESET = 444
_SYS_ADD_RULE = 445
_SYS_RESTRICT_SELF = 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

# File-system rights, and the ABI that introduced each.
EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13  # ABI 2
TRUNCATE = 1 << 14  # ABI 3
IOCTL_DEV = 1 << 15  # ABI 5
_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}
# Rights that make sense on a file (the kernel refuses directory rights on one).
_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV

NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1

# No EXECUTE: the worker loads libraries (mmap), it never needs to start a program.
READ = READ_FILE | READ_DIR
# Writing inside the output folder; no symbolic links, devices or sockets: the output is files.
WRITE = (
    READ
    | WRITE_FILE
    | REMOVE_DIR
    | REMOVE_FILE
    | MAKE_DIR
    | MAKE_REG
    | MAKE_FIFO
    | REFER
    | TRUNCATE
)


class LandlockError(OSError):
    """The kernel refused to build or apply the rule set."""


@dataclass(frozen=True)
class Rule:
    """Rights granted on everything beneath ``path`` (or on ``path`` itself, for a file)."""

    path: Path
    access: int


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> int | None:
    """The kernel's Landlock ABI, or ``None`` where Landlock is missing or turned off."""
    try:
        version = int(_libc().syscall(_SYS_CREATE_RULESET, None, 0, _CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return None
    return version if version > 0 else None


def handled_fs(abi: int) -> int:
    """Every file-system right the ABI knows: all of them denied unless a rule grants them."""
    return _FS_BY_ABI[max(known for known in _FS_BY_ABI if known <= abi)]


def rule_access(access: int, abi: int, is_dir: bool) -> int:
    """``access`` cut to what the ABI knows and to what a file (or folder) can be granted."""
    usable = access & handled_fs(abi)
    return usable if is_dir else usable & _FILE_RIGHTS


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


def _ruleset_size(abi: int) -> int:
    # An older kernel refuses fields it does not know, so only the known prefix is passed.
    if abi >= 6:
        return ctypes.sizeof(_RulesetAttr)
    return 16 if abi >= 4 else 8


def _check(result: int, what: str) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise LandlockError(code, f"{what}: {os.strerror(code)}")
    return result


def restrict_self(rules: Iterable[Rule], abi: int) -> None:
    """Restrict this process (and its future children) to ``rules``; TCP bind and connect are
    refused (ABI 4 and later), and signals and abstract sockets stay inside (ABI 6 and later).

    Paths that do not exist are skipped.

    Raises:
        LandlockError: the kernel refused a step; the process is then left unrestricted.
    """
    libc = _libc()
    attr = _RulesetAttr(
        handled_fs(abi),
        NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0,
        SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0,
    )
    ruleset = _check(
        libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), _ruleset_size(abi), 0),
        "landlock_create_ruleset",
    )
    try:
        for rule in rules:
            _add_rule(libc, ruleset, rule, abi)
        _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
        _check(libc.syscall(_SYS_RESTRICT_SELF, ruleset, 0), "landlock_restrict_self")
    finally:
        os.close(ruleset)


def _add_rule(libc: ctypes.CDLL, ruleset: int, rule: Rule, abi: int) -> None:
    try:
        descriptor = os.open(rule.path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        is_dir = stat.S_ISDIR(os.fstat(descriptor).st_mode)
        access = rule_access(rule.access, abi, is_dir)
        beneath = _PathBeneathAttr(access, descriptor)
        result = libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(beneath), 0)
        if result < 0 and ctypes.get_errno() != errno.ENOMSG:  # ENOMSG: nothing left to grant
            _check(result, f"landlock_add_rule({rule.path})")
    finally:
        os.close(descriptor)

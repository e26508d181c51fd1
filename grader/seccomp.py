"""A seccomp filter, for bubblewrap's --seccomp, that refuses new user namespaces inside the sandbox.

An unprivileged process can create a user namespace (`unshare -Ur`) and be root inside it, which
opens kernel code that is otherwise root-only. bubblewrap's own --disable-userns needs
--unshare-user, which would run the student's code as the TA's uid (root) behind a uid mapping and
lose the sandbox's own uid; a filter keeps that uid. It answers EPERM to unshare() and clone() with
CLONE_NEWUSER, and ENOSYS to clone3(), whose flags sit in memory a filter cannot read (glibc then
falls back to clone()). Syscalls of another ABI (32-bit int 0x80, x32) are refused outright.

Written as classic BPF by hand (struct sock_filter: u16 code, u8 jt, u8 jf, u32 k) to need no
library; `tests` run it against `unshare -Ur` in the sandbox.
"""
import platform
import struct

# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6]
NR, ARCH, ARG0 = 0, 4, 16
LD_ABS, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06
ALLOW, ERRNO = 0x7FFF0000, 0x00050000
EPERM, ENOSYS = 1, 38
CLONE_NEWUSER = 0x10000000
X32_BIT = 0x40000000

# machine: (AUDIT_ARCH_*, {syscall: number}, whether numbers from X32_BIT up are another ABI)
ARCHES = {
    "x86_64": (0xC000003E, {"clone": 56, "unshare": 272, "clone3": 435}, True),
    "aarch64": (0xC00000B7, {"clone": 220, "unshare": 97, "clone3": 435}, False),
}

# the program before assembly: (code, k), or (code, k, jt, jf) whose jumps are offsets or labels; a step may
# start with its own label
Jump = int | str
Step = tuple[int, int] | tuple[int, int, Jump, Jump]
Labelled = tuple[str, int, int]


def instruction(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def no_user_namespaces(machine: str | None = None) -> bytes | None:
    """The filter's bytes for this machine, or None where its syscall numbers are not known here."""
    if (machine or platform.machine()) not in ARCHES:
        return None
    arch, nr, x32 = ARCHES[machine or platform.machine()]
    # the last three instructions: refuse (EPERM), no clone3 (ENOSYS), allow; jumps are counted from the next one
    program: list[Step | Labelled] = [(LD_ABS, ARCH), (JEQ, arch, 0, "deny"), (LD_ABS, NR)]
    if x32:
        program.append((JGE, X32_BIT, "deny", 0))
    program += [(JEQ, nr["clone3"], "nosys", 0), (JEQ, nr["unshare"], "flags", 0),
                (JEQ, nr["clone"], "flags", "allow")]
    # flags: clone's and unshare's first argument (its low 32 bits: little-endian on both machines)
    program += [("flags", LD_ABS, ARG0), (JSET, CLONE_NEWUSER, "deny", "allow")]
    program += [("deny", RET, ERRNO | EPERM), ("nosys", RET, ERRNO | ENOSYS), ("allow", RET, ALLOW)]
    labels: dict[str, int] = {}
    body: list[Step] = []
    for step in program:
        if isinstance(step[0], str):
            labels[step[0]] = len(body)
            step = step[1:]
        body.append(step)

    def jump(target: Jump, at: int) -> int:
        return target if isinstance(target, int) else labels[target] - at - 1

    return b"".join(instruction(code, k, *(jump(t, at) for t in jumps))
                    for at, (code, k, *jumps) in enumerate(body))

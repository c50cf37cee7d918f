//! The seccomp filters every job runs under: a deny list of the system calls an ML job never
//! needs and that reach the host's kernel, its terminal or its other processes.
//!
//! Two filters, both "allow unless listed", compiled from syscall *names* per architecture
//! (x86_64 and aarch64, so a cluster's nodes of either kind get the right numbers):
//!
//! - [`Filters::deny`] answers `EPERM`: typing into or taking over a terminal (`ioctl` with
//!   `TIOCSTI`, `TIOCLINUX`, `TIOCCONS`, `TIOCSETD`), kernel and machine administration (modules,
//!   kexec, reboot, swap, clocks, quotas, accounting, the kernel log), mounting and namespaces
//!   (`mount`, `pivot_root`, `setns`, `unshare`, `clone` with a namespace flag), kernel keyrings,
//!   `bpf`, `perf_event_open`, `userfaultfd`, `ptrace` and cross-process memory access, and handle-
//!   based opens. On x86_64 it also refuses every x32-ABI call (numbers with bit 30 set), which
//!   would otherwise reach the same kernel entry points under other numbers.
//! - [`Filters::nosys`] answers `ENOSYS` for calls whose callers fall back when they are missing:
//!   `clone3` (glibc then uses `clone`, whose flags the deny list can inspect) and `io_uring`.
//!
//! Any call made under another architecture's ABI (e.g. `int 0x80` from a 64-bit process) kills
//! the process. Filters are raw BPF (`struct sock_filter` arrays), as bubblewrap's
//! `--add-seccomp-fd` and `seccomp(2)` take them.

pub use seccompiler::sock_filter;
use seccompiler::{BpfProgram, TargetArch};
use serde_json::{Value, json};

/// System calls refused with `EPERM` on every architecture.
const DENIED: &[&str] = &[
    // The kernel and the machine.
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "syslog",
    "quotactl",
    "nfsservctl",
    "vhangup",
    // Mounts and namespaces.
    "mount",
    "umount2",
    "pivot_root",
    "setns",
    "unshare",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    // Kernel attack surface no job needs.
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "lookup_dcookie",
    "open_by_handle_at",
    "name_to_handle_at",
    // Other processes' memory.
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
];

/// Refused with `EPERM` where the architecture has them (x86_64 only).
const DENIED_X86_64: &[&str] = &[
    "iopl",
    "ioperm",
    "uselib",
    "ustat",
    "sysfs",
    "_sysctl",
    "create_module",
    "get_kernel_syms",
    "query_module",
];

/// Answered with `ENOSYS`, so callers fall back to what the deny list can inspect or to plain
/// I/O.
const NOT_IMPLEMENTED: &[&str] = &[
    "clone3",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
];

/// `ioctl` requests refused with `EPERM` (the same numbers on x86_64 and aarch64): typing into
/// a terminal's input, the Linux console's controls, redirecting the console, changing a
/// terminal's line discipline.
pub const TERMINAL_IOCTLS: &[(&str, u64)] = &[
    ("TIOCSTI", 0x5412),
    ("TIOCLINUX", 0x541C),
    ("TIOCCONS", 0x541D),
    ("TIOCSETD", 0x5423),
];

/// `clone` flags that make a namespace; a `clone` with any of them is refused.
const NAMESPACE_FLAGS: &[u64] = &[
    0x0002_0000, // CLONE_NEWNS
    0x0200_0000, // CLONE_NEWCGROUP
    0x0400_0000, // CLONE_NEWUTS
    0x0800_0000, // CLONE_NEWIPC
    0x1000_0000, // CLONE_NEWUSER
    0x2000_0000, // CLONE_NEWPID
    0x4000_0000, // CLONE_NEWNET
];

/// The x32 ABI's syscall-number bit on x86_64.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Why the filters could not be built (a bug, or an architecture without syscall tables).
#[derive(Debug, thiserror::Error)]
#[error("building the jobs' seccomp filter for {arch}: {message}")]
pub struct SeccompError {
    arch: String,
    message: String,
}

/// A job's two filters, as raw BPF bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filters {
    pub deny: Vec<u8>,
    pub nosys: Vec<u8>,
}

/// The architectures filters are built for, by `uname -m` name.
pub const ARCHITECTURES: &[&str] = &["x86_64", "aarch64"];

/// The filters for `arch` (`uname -m`: `x86_64` or `aarch64`).
pub fn filters(arch: &str) -> Result<Filters, SeccompError> {
    let fail = |message: String| SeccompError {
        arch: arch.to_string(),
        message,
    };
    let target = match arch {
        "x86_64" => TargetArch::x86_64,
        "aarch64" => TargetArch::aarch64,
        other => return Err(fail(format!("no syscall table for `{other}`"))),
    };
    let mut denied: Vec<Value> = DENIED
        .iter()
        .chain(if target == TargetArch::x86_64 {
            DENIED_X86_64
        } else {
            &[]
        })
        .map(|name| json!({ "syscall": name }))
        .collect();
    for (_, request) in TERMINAL_IOCTLS {
        // The kernel reads the request as 32 bits, so compare only those (a request with junk
        // in the upper half is still the same request).
        denied.push(json!({
            "syscall": "ioctl",
            "args": [{ "index": 1, "type": "dword", "op": "eq", "val": request }],
        }));
    }
    for flag in NAMESPACE_FLAGS {
        denied.push(json!({
            "syscall": "clone",
            "args": [{ "index": 0, "type": "dword", "op": { "masked_eq": flag }, "val": flag }],
        }));
    }
    let nosys: Vec<Value> = NOT_IMPLEMENTED
        .iter()
        .map(|name| json!({ "syscall": name }))
        .collect();
    let policy = json!({
        "deny": { "mismatch_action": "allow", "match_action": { "errno": libc::EPERM }, "filter": denied },
        "nosys": { "mismatch_action": "allow", "match_action": { "errno": libc::ENOSYS }, "filter": nosys },
    });
    let mut compiled = seccompiler::compile_from_json(policy.to_string().as_bytes(), target)
        .map_err(|e| fail(e.to_string()))?;
    let mut take = |name: &str| {
        compiled
            .remove(name)
            .ok_or_else(|| fail(format!("the `{name}` filter is missing")))
    };
    let (mut deny, nosys) = (take("deny")?, take("nosys")?);
    if target == TargetArch::x86_64 {
        deny.splice(0..0, x32_guard());
    }
    Ok(Filters {
        deny: to_bytes(&deny),
        nosys: to_bytes(&nosys),
    })
}

/// The filters for the architecture this process runs on.
pub fn for_this_machine() -> Result<Filters, SeccompError> {
    filters(std::env::consts::ARCH)
}

/// `EPERM` for any syscall number with the x32 bit set (x86_64 only).
fn x32_guard() -> Vec<sock_filter> {
    const BPF_LD_W_ABS: u16 = 0x20;
    const BPF_JMP_JGE_K: u16 = 0x35;
    const BPF_RET_K: u16 = 0x06;
    let instruction = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    vec![
        // A = seccomp_data.nr
        instruction(BPF_LD_W_ABS, 0, 0, 0),
        // if A >= X32_SYSCALL_BIT: next, else skip it
        instruction(BPF_JMP_JGE_K, 0, 1, X32_SYSCALL_BIT),
        instruction(
            BPF_RET_K,
            0,
            0,
            libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        ),
    ]
}

fn to_bytes(program: &BpfProgram) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for instruction in program {
        bytes.extend_from_slice(&instruction.code.to_ne_bytes());
        bytes.push(instruction.jt);
        bytes.push(instruction.jf);
        bytes.extend_from_slice(&instruction.k.to_ne_bytes());
    }
    bytes
}

/// Install `program` (raw BPF bytes from [`Filters`]) on the calling thread, after setting
/// `no_new_privs`. Only async-signal-safe calls: usable between `fork` and `exec`.
///
/// # Safety
/// `program` must be a whole number of `sock_filter`s, aligned for them (`Filters`' vectors
/// reinterpreted through [`aligned`]).
pub unsafe fn install(program: &[sock_filter]) -> std::io::Result<()> {
    #[repr(C)]
    struct SockFprog {
        len: libc::c_ushort,
        filter: *const sock_filter,
    }
    let fprog = SockFprog {
        len: program.len() as libc::c_ushort,
        filter: program.as_ptr(),
    };
    // SAFETY: plain syscalls on a program that outlives them.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &fprog as *const SockFprog,
        ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The instructions of a filter's bytes, for [`install`].
pub fn aligned(bytes: &[u8]) -> Vec<sock_filter> {
    bytes
        .chunks_exact(8)
        .map(|c| sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_build_for_every_supported_architecture() {
        for arch in ARCHITECTURES {
            let filters = filters(arch).unwrap();
            assert!(
                filters.deny.len() > 8 * 40,
                "{arch}: {}",
                filters.deny.len()
            );
            assert!(!filters.nosys.is_empty());
            assert_eq!(filters.deny.len() % 8, 0);
            assert_eq!(aligned(&filters.deny).len() * 8, filters.deny.len());
        }
        assert!(filters("sparc").unwrap_err().to_string().contains("sparc"));
        // Only x86_64 has the x32 guard (its first instruction loads the syscall number, where
        // the compiled program starts by loading the architecture at offset 4).
        let x86 = aligned(&filters("x86_64").unwrap().deny);
        let arm = aligned(&filters("aarch64").unwrap().deny);
        assert_eq!((x86[0].code, x86[0].k), (0x20, 0));
        assert_eq!((arm[0].code, arm[0].k), (0x20, 4));
    }

    /// The filter in a forked child: TIOCSTI, unshare and clone3 are refused with the right
    /// errors, ordinary calls still work.
    #[test]
    fn a_filtered_process_cannot_type_into_a_terminal_or_make_namespaces() {
        let filters = for_this_machine().unwrap();
        let (deny, nosys) = (aligned(&filters.deny), aligned(&filters.nosys));
        // SAFETY: the child only makes raw syscalls and exits with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let code = unsafe {
                let ok = install(&deny).is_ok() && install(&nosys).is_ok();
                let byte = b'x';
                let sti = libc::ioctl(0, 0x5412, &byte);
                let sti_errno = *libc::__errno_location();
                // The same request with junk in the upper 32 bits.
                let sti_high = libc::syscall(libc::SYS_ioctl, 0, 0x1_0000_5412u64, &byte);
                let sti_high_errno = *libc::__errno_location();
                let unshare = libc::unshare(libc::CLONE_NEWUSER);
                let unshare_errno = *libc::__errno_location();
                let clone3 = libc::syscall(libc::SYS_clone3, 0, 0);
                let clone3_errno = *libc::__errno_location();
                let pid = libc::getpid();
                let fine = ok
                    && sti == -1
                    && sti_errno == libc::EPERM
                    && sti_high == -1
                    && sti_high_errno == libc::EPERM
                    && unshare == -1
                    && unshare_errno == libc::EPERM
                    && clone3 == -1
                    && clone3_errno == libc::ENOSYS
                    && pid > 0;
                if fine { 0 } else { 1 }
            };
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status), "the child died: {status}");
        assert_eq!(libc::WEXITSTATUS(status), 0, "a refused call got through");
    }
}

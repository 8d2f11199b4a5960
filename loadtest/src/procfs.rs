//! CPU time and memory from `/proc`: a process's `utime + stime`, its RSS and peak RSS, and machine-wide busy time.
//! Times are in clock ticks (`USER_HZ`, 100 on every Linux x86_64 and arm64 kernel; read without libc).
//!
//! A process's `utime + stime` is its scheduler run time (precise, and it includes the softirq work done in its
//! context, e.g. the loopback receiver's TCP work inside a `send`), while `/proc/stat`'s machine-wide counters are
//! sampled at the timer tick. The two disagree by several percent of a core under heavy networking, so "other"
//! processes are measured like the server and the load generator: per process, not as the machine minus those two.

use std::collections::HashMap;
use std::path::Path;

/// Clock ticks per second of `/proc` CPU times.
pub const USER_HZ: f64 = 100.0;

/// `utime + stime` of a process, in clock ticks, from the text of `/proc/PID/stat`.
pub fn parse_proc_stat(text: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Machine-wide (busy, total) clock ticks from the text of `/proc/stat` (its aggregate `cpu` line). Busy is all but
/// idle and iowait.
pub fn parse_machine_stat(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already inside user.
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// `(VmRSS, VmHWM)` in KiB from the text of `/proc/PID/status`.
pub fn parse_status_memory(text: &str) -> (Option<u64>, Option<u64>) {
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l[name.len()..].split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU ticks of a process (`pid` None: this one).
pub fn process_ticks(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    parse_proc_stat(&std::fs::read_to_string(path).ok()?)
}

/// Machine (busy, total) ticks.
pub fn machine_ticks() -> Option<(u64, u64)> {
    parse_machine_stat(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// `(VmRSS, VmHWM)` of a process in KiB.
pub fn process_memory(pid: u32) -> (Option<u64>, Option<u64>) {
    match std::fs::read_to_string(Path::new(&format!("/proc/{pid}/status"))) {
        Ok(t) => parse_status_memory(&t),
        Err(_) => (None, None),
    }
}

/// `utime + stime` of every process but the ones in `except`, by pid (kernel threads included).
fn all_process_ticks(except: &[u32]) -> HashMap<u32, u64> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| !except.contains(pid))
        .filter_map(|pid| Some((pid, process_ticks(Some(pid))?)))
        .collect()
}

/// CPU time of the processes in `b` since `a`; a process absent from `a` started in between and counts whole.
/// Processes that ended in between are not counted (their time is gone from `/proc`).
fn others_ticks_between(a: &HashMap<u32, u64>, b: &HashMap<u32, u64>) -> u64 {
    b.iter()
        .map(|(pid, t)| t.saturating_sub(a.get(pid).copied().unwrap_or(0)))
        .sum()
}

/// CPU use at one instant, to difference against another.
#[derive(Debug, Clone, Default)]
pub struct CpuSample {
    pub server: Option<u64>,
    pub loadgen: Option<u64>,
    pub machine: Option<(u64, u64)>,
    /// Every other process's CPU ticks, by pid.
    pub others: HashMap<u32, u64>,
}

impl CpuSample {
    pub fn take(server_pid: Option<u32>) -> CpuSample {
        let me = std::process::id();
        let except: Vec<u32> = server_pid.into_iter().chain([me]).collect();
        CpuSample {
            server: server_pid.and_then(|p| process_ticks(Some(p))),
            loadgen: process_ticks(None),
            machine: machine_ticks(),
            others: all_process_ticks(&except),
        }
    }
}

/// CPU use between two samples, in percent of one core (100 = one core fully busy).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuUse {
    pub server_pct: Option<f64>,
    pub loadgen_pct: Option<f64>,
    /// All busy time of the machine, in percent of one core (up to 100 x cores).
    pub machine_pct: Option<f64>,
    /// All other processes (kernel threads included), measured per process like the server.
    pub other_pct: Option<f64>,
}

/// CPU percentages between `a` and `b`, `secs` apart.
pub fn cpu_use(a: &CpuSample, b: &CpuSample, secs: f64) -> CpuUse {
    let pct = |x: Option<u64>, y: Option<u64>| match (x, y) {
        (Some(x), Some(y)) if secs > 0.0 => Some(y.saturating_sub(x) as f64 / USER_HZ / secs * 100.0),
        _ => None,
    };
    let server_pct = pct(a.server, b.server);
    let loadgen_pct = pct(a.loadgen, b.loadgen);
    let machine_pct = pct(a.machine.map(|m| m.0), b.machine.map(|m| m.0));
    let other_pct = (secs > 0.0 && !b.others.is_empty())
        .then(|| others_ticks_between(&a.others, &b.others) as f64 / USER_HZ / secs * 100.0);
    CpuUse {
        server_pct,
        loadgen_pct,
        machine_pct,
        other_pct,
    }
}

/// Busy share of the whole machine (0..1) between two machine samples.
pub fn machine_busy_fraction(a: (u64, u64), b: (u64, u64)) -> f64 {
    let total = b.1.saturating_sub(a.1);
    if total == 0 {
        0.0
    } else {
        b.0.saturating_sub(a.0) as f64 / total as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_parse() {
        let stat = "1234 (my (odd) proc) S 1 1234 1234 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 4 0 123 1000 200";
        assert_eq!(parse_proc_stat(stat), Some(300));
        let machine = "cpu  100 5 50 800 20 1 4 0 0 0\ncpu0 50 2 25 400 10 0 2 0 0 0\n";
        assert_eq!(parse_machine_stat(machine), Some((160, 980)));
        let status = "Name:\torrery\nVmHWM:\t  131072 kB\nVmRSS:\t  122880 kB\n";
        assert_eq!(parse_status_memory(status), (Some(122_880), Some(131_072)));
        assert!(process_ticks(None).is_some(), "reads /proc/self/stat");
    }

    #[test]
    fn cpu_percentages() {
        let a = CpuSample {
            server: Some(1000),
            loadgen: Some(500),
            machine: Some((2000, 10_000)),
            others: HashMap::from([(1, 100), (2, 30)]),
        };
        let b = CpuSample {
            server: Some(1450),
            loadgen: Some(800),
            machine: Some((2800, 16_000)),
            // pid 1 ran 30 ticks, pid 2 ended (not counted), pid 3 started in between (counted whole).
            others: HashMap::from([(1, 130), (3, 20)]),
        };
        let u = cpu_use(&a, &b, 10.0);
        assert_eq!(u.server_pct, Some(45.0));
        assert_eq!(u.loadgen_pct, Some(30.0));
        assert_eq!(u.machine_pct, Some(80.0));
        assert_eq!(u.other_pct, Some(5.0));
        assert!((machine_busy_fraction(a.machine.unwrap(), b.machine.unwrap()) - 800.0 / 6000.0).abs() < 1e-12);
    }

    #[test]
    fn other_processes_leave_out_the_server_and_the_load_generator() {
        let me = std::process::id();
        let sample = CpuSample::take(Some(1));
        assert!(sample.server.is_some(), "pid 1 is read as the server");
        assert!(!sample.others.contains_key(&me) && !sample.others.contains_key(&1));
        assert!(!sample.others.is_empty(), "other processes are listed");
    }
}

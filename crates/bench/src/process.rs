//! Figures of the server process read from `/proc`, and the open-files limit.

use std::fs;
use std::time::Instant;

/// A reading of a process's memory and CPU time.
#[derive(Debug, Clone, Copy)]
pub struct ProcessSample {
    /// Resident set size, bytes.
    pub rss_bytes: u64,
    /// User + system CPU time, seconds.
    pub cpu_seconds: f64,
    /// When the reading was taken.
    pub at: Instant,
}

impl ProcessSample {
    /// Reads `/proc/PID/status` and `/proc/PID/stat`; `None` when the process is gone or the
    /// files are unreadable.
    #[must_use]
    pub fn read(pid: u32) -> Option<Self> {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let rss_kb: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()?;
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the command name (which may contain spaces) start after the last ')'.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the ')'.
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        Some(Self {
            rss_bytes: rss_kb * 1024,
            cpu_seconds: (utime + stime) as f64 / clock_ticks_per_second(),
            at: Instant::now(),
        })
    }
}

/// `sysconf(_SC_CLK_TCK)`: 100 on every Linux this runs on (asked of `getconf` when it exists).
fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|ticks| *ticks > 0.0)
        .unwrap_or(100.0)
}

/// Raises the soft open-files limit as far as the hard limit allows; returns the new soft limit.
pub fn raise_open_files_limit() -> std::io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_process() {
        let sample = ProcessSample::read(std::process::id()).unwrap();
        assert!(sample.rss_bytes > 0);
        assert!(sample.cpu_seconds >= 0.0);
        assert!(ProcessSample::read(u32::MAX).is_none());
    }
}

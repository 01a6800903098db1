//! The process's peak resident memory, per model: what `bench` reports beside throughput,
//! comparable with `/usr/bin/time -f %M` around a peer engine's run.
//!
//! Linux keeps the high-water mark (`VmHWM` in `/proc/self/status`) and resets it when `5` is
//! written to `/proc/self/clear_refs`, so each model's figure starts from what the process
//! held before it loaded. Elsewhere there is no figure (`None`), rather than a wrong one.

/// Resets the high-water mark to the current resident size; false where that cannot be done.
pub fn reset() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The peak resident size in bytes since the process started or the last [`reset`].
pub fn bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn the_peak_follows_an_allocation_and_resets() {
        assert!(super::reset());
        let before = super::bytes().unwrap();
        let big = vec![1u8; 64 << 20];
        std::hint::black_box(&big);
        let peak = super::bytes().unwrap();
        assert!(peak >= before + (60 << 20), "{before} -> {peak}");
        drop(big);
        assert!(super::reset());
        assert!(super::bytes().unwrap() < peak, "the reset brings the peak down to what is resident");
    }
}

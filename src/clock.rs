//! Wall-clock time as reports, metrics and the reference target's records carry it: seconds (or
//! milliseconds, microseconds) since the Unix epoch, 0 for a clock set before 1970.

use std::time::{SystemTime, UNIX_EPOCH};

fn since_epoch() -> std::time::Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// Seconds since the Unix epoch, with fractions.
pub fn unix_seconds() -> f64 {
    since_epoch().as_secs_f64()
}

/// Milliseconds since the Unix epoch.
pub fn unix_millis() -> u64 {
    u64::try_from(since_epoch().as_millis()).unwrap_or(u64::MAX)
}

/// Microseconds since the Unix epoch.
pub fn unix_micros() -> u64 {
    u64::try_from(since_epoch().as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_agree() {
        let (s, ms, us) = (unix_seconds(), unix_millis(), unix_micros());
        assert!(s > 1.7e9, "{s}");
        assert!((ms as f64 / 1e3 - s).abs() < 5.0 && (us as f64 / 1e6 - s).abs() < 5.0);
    }
}

//! Times the way Docker's CLI prints them: `ps` ages ("5 seconds ago", "Up About a minute",
//! go-units' HumanDuration) and Go's `time.Time.String()` for `--format json`.
use chrono::{DateTime, Utc};

/// go-units `HumanDuration`.
pub fn human_duration(seconds: i64) -> String {
    let hours = (seconds as f64 / 3600.0 + 0.5) as i64;
    match seconds {
        s if s < 1 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        s if s / 60 == 1 => "About a minute".into(),
        s if s / 60 < 60 => format!("{} minutes", s / 60),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        s => format!("{} years", s / 3600 / 24 / 365),
    }
}

pub fn parse(rfc3339: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(rfc3339).ok().map(|t| t.with_timezone(&Utc))
}

/// Seconds from `rfc3339` until now (0 when unparsable or in the future).
pub fn seconds_since(rfc3339: &str) -> i64 {
    parse(rfc3339).map(|t| (Utc::now() - t).num_seconds().max(0)).unwrap_or(0)
}

/// "N seconds ago" for the CREATED column.
pub fn ago(rfc3339: &str) -> String {
    format!("{} ago", human_duration(seconds_since(rfc3339)))
}

/// Go's `time.Time.String()` in UTC: `2022-08-02 09:05:20.250288712 +0000 UTC` (the fraction
/// without trailing zeros, none when whole); `nanos: false` drops it (Docker's `ps`).
pub fn go_time(rfc3339: &str, nanos: bool) -> String {
    let Some(t) = parse(rfc3339) else {
        return rfc3339.to_string();
    };
    let mut out = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let frac = t.timestamp_subsec_nanos();
    if nanos && frac != 0 {
        let digits = format!("{frac:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push_str(" +0000 UTC");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_match_go_units() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(42), "42 seconds");
        assert_eq!(human_duration(60), "About a minute");
        assert_eq!(human_duration(119), "About a minute");
        assert_eq!(human_duration(120), "2 minutes");
        assert_eq!(human_duration(3599), "59 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
        assert_eq!(human_duration(20 * 86400), "2 weeks");
        assert_eq!(human_duration(90 * 86400), "3 months");
        assert_eq!(human_duration(3 * 365 * 86400), "3 years");
    }

    #[test]
    fn go_time_strings() {
        assert_eq!(go_time("2022-08-02T09:05:20.250288712Z", true), "2022-08-02 09:05:20.250288712 +0000 UTC");
        assert_eq!(go_time("2022-08-02T09:05:20.250000000Z", true), "2022-08-02 09:05:20.25 +0000 UTC");
        assert_eq!(go_time("2022-08-02T09:05:20Z", true), "2022-08-02 09:05:20 +0000 UTC");
        assert_eq!(go_time("2022-08-02T09:05:20.5Z", false), "2022-08-02 09:05:20 +0000 UTC");
    }
}

//! Quantities in words for messages: durations without nine decimals.

use std::time::Duration;

/// `d` in seconds as a person writes it: whole seconds from 10 s up (`123`), at most three
/// decimals below, trailing zeros dropped (`2`, `1.5`, `0.005`).
pub fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 10.0 {
        return format!("{s:.0}");
    }
    let text = format!("{s:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_read_as_written() {
        let ms = Duration::from_millis;
        assert_eq!(seconds(ms(5)), "0.005");
        assert_eq!(seconds(ms(1500)), "1.5");
        assert_eq!(seconds(ms(2000)), "2");
        assert_eq!(seconds(ms(0)), "0");
        assert_eq!(seconds(Duration::from_nanos(123_456_789_012)), "123");
        assert_eq!(seconds(Duration::from_nanos(9_999_999_999)), "10");
    }
}

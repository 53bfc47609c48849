//! Completion indexes of Indexed Jobs as upstream writes them in `status.completedIndexes`:
//! sorted, comma-separated single indexes and `first-last` intervals (`1,3-5,7`).

use std::collections::BTreeSet;

/// Parses an interval list, ignoring malformed parts and indexes at or past `completions`.
pub fn parse(text: &str, completions: i32) -> BTreeSet<i32> {
    let mut indexes = BTreeSet::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (first, last) = match part.split_once('-') {
            Some((first, last)) => (first.parse::<i32>(), last.parse::<i32>()),
            None => (part.parse::<i32>(), part.parse::<i32>()),
        };
        if let (Ok(first), Ok(last)) = (first, last) {
            indexes.extend((first.max(0)..=last.min(completions - 1)).filter(|i| *i >= 0));
        }
    }
    indexes
}

/// Formats indexes as an interval list (empty for none).
pub fn format(indexes: &BTreeSet<i32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut run: Option<(i32, i32)> = None;
    for &index in indexes {
        run = match run {
            Some((first, last)) if last + 1 == index => Some((first, index)),
            Some(done) => {
                parts.push(interval(done));
                Some((index, index))
            }
            None => Some((index, index)),
        };
    }
    if let Some(done) = run {
        parts.push(interval(done));
    }
    parts.join(",")
}

fn interval((first, last): (i32, i32)) -> String {
    if first == last {
        first.to_string()
    } else {
        format!("{first}-{last}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_round_trip() {
        for (text, expected) in [
            ("", vec![]),
            ("0", vec![0]),
            ("1,3-5,7", vec![1, 3, 4, 5, 7]),
            ("0-2", vec![0, 1, 2]),
        ] {
            let parsed = parse(text, 10);
            assert_eq!(parsed.iter().copied().collect::<Vec<_>>(), expected);
            assert_eq!(format(&parsed), text);
        }
    }

    #[test]
    fn out_of_range_and_malformed_parts_are_dropped() {
        let parsed = parse("x,2,8-12,-1", 10);
        assert_eq!(parsed.iter().copied().collect::<Vec<_>>(), vec![2, 8, 9]);
        assert_eq!(format(&[4, 0, 1, 2].into_iter().collect()), "0-2,4");
    }
}

//! Fuzz target: any text as a `labelSelector` either parses or is refused with a message; a
//! parsed selector matches any label set without panicking.

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use skiff_apiserver::LabelSelector;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(selector) = LabelSelector::parse(text) {
        let labels: BTreeMap<String, String> = text
            .split(',')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let _ = selector.matches(&labels);
        let _ = selector.matches(&BTreeMap::new());
    }
});

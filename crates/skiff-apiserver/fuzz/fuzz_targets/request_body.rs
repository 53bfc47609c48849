//! Fuzz target: request body decoding. The first byte picks the media type (JSON, YAML,
//! Kubernetes protobuf, or something unsupported); the rest is the body. Decoding returns an
//! object or a 4xx Status, and never panics.

#![no_main]

use libfuzzer_sys::fuzz_target;

const MEDIA_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json; charset=utf-8",
    "text/plain",
];

fuzz_target!(|data: &[u8]| {
    let Some((first, body)) = data.split_first() else {
        return;
    };
    let media = MEDIA_TYPES[*first as usize % MEDIA_TYPES.len()];
    if let Err(error) = skiff_apiserver::decode_body(media, body) {
        assert!(error.code.is_client_error(), "{media}: {error:?}");
    }
});

//! Bad input never panics: random and mutated request bodies and selectors (the same
//! properties the cargo-fuzz targets in `fuzz/` check, run here on every test run).

use skiff_apiserver::{LabelSelector, decode_body};

/// A small deterministic generator (xorshift), so failures reproduce.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, seeds: &[&[u8]]) -> Vec<u8> {
        let seed = seeds[(self.next() % seeds.len() as u64) as usize];
        let mut out = seed.to_vec();
        for _ in 0..(self.next() % 6) {
            match self.next() % 4 {
                0 if !out.is_empty() => {
                    let at = (self.next() % out.len() as u64) as usize;
                    out[at] = self.next() as u8;
                }
                1 if !out.is_empty() => {
                    let at = (self.next() % out.len() as u64) as usize;
                    out.truncate(at);
                }
                2 => {
                    let at = (self.next() % (out.len() as u64 + 1)) as usize;
                    out.insert(at, self.next() as u8);
                }
                _ => out.extend_from_slice(seed),
            }
        }
        out
    }
}

#[test]
fn request_bodies_decode_or_are_refused_with_a_client_error() {
    let seeds: &[&[u8]] = &[
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"k":"v"}}"#,
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata: {k: v}\n",
        b"k8s\0\n\x0c\n\x02v1\x12\x06Secret\x12\x04\n\x02\n\x00",
        b"[1, 2, {\"a\": null}]",
        b"- &a [*a]\n",
        b"",
    ];
    let media = [
        "application/json",
        "application/yaml",
        "application/vnd.kubernetes.protobuf",
        "text/plain",
    ];
    let mut random = Random(0x5eed_1234_abcd_0001);
    for _ in 0..20_000 {
        let body = random.bytes(seeds);
        let media = media[(random.next() % media.len() as u64) as usize];
        if let Err(error) = decode_body(media, &body) {
            assert!(error.code.is_client_error(), "{media} {body:?}: {error:?}");
        }
    }
}

#[test]
fn label_selectors_parse_or_are_refused() {
    let seeds: &[&[u8]] = &[
        b"app=web,tier!=db",
        b"env in (prod, staging),!legacy",
        b"a notin (x),b,c==d",
        b"((((",
        b"k8s.io/name=",
    ];
    let mut random = Random(0x0dd_ba11);
    for _ in 0..20_000 {
        let text = String::from_utf8_lossy(&random.bytes(seeds)).into_owned();
        if let Ok(selector) = LabelSelector::parse(&text) {
            let _ = selector.matches(&Default::default());
        }
    }
}

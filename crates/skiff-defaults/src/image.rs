//! The image reference rules behind `imagePullPolicy` defaulting.
//!
//! Upstream parses the image with the distribution reference grammar and defaults the policy to
//! `Always` when the tag is `latest` (an image with neither tag nor digest counts as `latest`),
//! and to `IfNotPresent` otherwise, including for references that do not parse.

/// The default `imagePullPolicy` for a container image.
pub(crate) fn default_pull_policy(image: &str) -> &'static str {
    if effective_tag(image).as_deref() == Some("latest") {
        "Always"
    } else {
        "IfNotPresent"
    }
}

/// The tag `ParseImageName` reports: the explicit tag, `latest` when there is neither tag nor
/// digest, `""` when there is only a digest; `None` for a reference that does not parse.
fn effective_tag(image: &str) -> Option<String> {
    if image.is_empty() || image.len() > 255 + 200 {
        return None;
    }
    let (name_and_tag, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest
        && !valid_digest(d)
    {
        return None;
    }
    let last_slash = name_and_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_and_tag[last_slash..].rfind(':') {
        Some(i) => (
            &name_and_tag[..last_slash + i],
            Some(&name_and_tag[last_slash + i + 1..]),
        ),
        None => (name_and_tag, None),
    };
    if !valid_name(name) || name.len() > 255 {
        return None;
    }
    if tag.is_some_and(|t| !valid_tag(t)) {
        return None;
    }
    Some(match (tag, digest) {
        (Some(t), _) => t.to_owned(),
        (None, Some(_)) => String::new(),
        (None, None) => "latest".to_owned(),
    })
}

fn valid_digest(d: &str) -> bool {
    let Some((algorithm, hex)) = d.split_once(':') else {
        return false;
    };
    !algorithm.is_empty()
        && algorithm
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
        && hex.len() >= 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

fn valid_tag(t: &str) -> bool {
    let bytes = t.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// `[domain/]path`, where the first component is a domain when it holds `.` or `:`, is
/// `localhost`, or has upper-case letters; path components must be lower case.
fn valid_name(name: &str) -> bool {
    // A bare 64-hex-digit name is refused as ambiguous with an image ID.
    if name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return false;
    }
    let mut components: Vec<&str> = name.split('/').collect();
    if components.len() > 1 {
        let first = components[0];
        if first.contains(['.', ':']) || first == "localhost" || first != first.to_lowercase() {
            if !valid_domain(first) {
                return false;
            }
            components.remove(0);
        }
    }
    components.iter().all(|c| valid_path_component(c))
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || !p.is_empty() => (h, Some(p)),
        _ => (d, None),
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        // Perhaps an IPv6 literal without a port.
        return d.starts_with('[') && d.ends_with(']');
    }
    if host.starts_with('[') {
        return host.ends_with(']')
            && host[1..host.len() - 1]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    if bytes.is_empty() || !is_alnum(bytes[0]) || !is_alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if is_alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !is_alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::default_pull_policy as p;

    #[test]
    fn latest_or_untagged_pulls_always() {
        assert_eq!(p("nginx"), "Always");
        assert_eq!(p("nginx:latest"), "Always");
        assert_eq!(p("docker.io/library/nginx"), "Always");
        assert_eq!(p("localhost:5000/team/app"), "Always");
        assert_eq!(p("localhost:5000/team/app:latest"), "Always");
        assert_eq!(p("registry.k8s.io/pause"), "Always");
        assert_eq!(p("[::1]:5000/app"), "Always");
    }

    #[test]
    fn anything_else_pulls_if_not_present() {
        assert_eq!(p("nginx:1.27"), "IfNotPresent");
        assert_eq!(p("localhost:5000/app:v1"), "IfNotPresent");
        let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(p(&format!("nginx@{digest}")), "IfNotPresent");
        assert_eq!(p(&format!("nginx:latest@{digest}")), "Always");
        // Unparseable references: upstream ignores the parse error.
        assert_eq!(p(""), "IfNotPresent");
        assert_eq!(p("Nginx"), "IfNotPresent");
        assert_eq!(p("nginx:"), "IfNotPresent");
        assert_eq!(p("nginx@sha256:xyz"), "IfNotPresent");
        assert_eq!(p("a//b"), "IfNotPresent");
        assert_eq!(p("nginx:-bad"), "IfNotPresent");
    }
}

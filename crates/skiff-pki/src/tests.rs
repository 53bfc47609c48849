use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::PermissionsExt;

use super::*;

fn names() -> (Vec<String>, Vec<IpAddr>) {
    (
        vec!["localhost".into(), "kubernetes.default.svc".into()],
        vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ],
    )
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn first_start_creates_a_ca_serving_and_admin_certificates_with_private_keys() {
    let dir = tempfile::tempdir().unwrap();
    let tls = dir.path().join("tls");
    let (dns, ips) = names();
    let pki = ClusterPki::load_or_create(&tls, &dns, &ips).unwrap();
    for key in ["ca.key", "serving.key", "admin.key"] {
        assert_eq!(mode(&tls.join(key)), 0o600, "{key}");
    }
    assert_eq!(mode(&tls), 0o700);
    let admin = Leaf::Client {
        user: ADMIN_USER.into(),
        groups: vec![ADMIN_GROUP.into()],
    };
    assert!(still_fits(&pki.admin.cert_pem, &pki.ca, &admin));
    let serving = Leaf::Server {
        common_name: "kube-apiserver".into(),
        dns_names: dns.clone(),
        ip_addresses: ips.clone(),
    };
    assert!(still_fits(&pki.serving.cert_pem, &pki.ca, &serving));
}

#[test]
fn later_starts_reuse_certificates_and_reissue_for_new_names() {
    let dir = tempfile::tempdir().unwrap();
    let (dns, ips) = names();
    let first = ClusterPki::load_or_create(dir.path(), &dns, &ips).unwrap();
    let again = ClusterPki::load_or_create(dir.path(), &dns, &ips).unwrap();
    assert_eq!(first.ca.cert_pem(), again.ca.cert_pem());
    assert_eq!(first.serving.cert_pem, again.serving.cert_pem);
    assert_eq!(first.admin.cert_pem, again.admin.cert_pem);

    let mut more = dns.clone();
    more.push("api.example.test".into());
    let widened = ClusterPki::load_or_create(dir.path(), &more, &ips).unwrap();
    assert_eq!(first.ca.cert_pem(), widened.ca.cert_pem(), "same CA");
    assert_ne!(first.serving.cert_pem, widened.serving.cert_pem, "reissued");
    assert_eq!(first.admin.cert_pem, widened.admin.cert_pem);
}

#[test]
fn a_certificate_from_another_ca_does_not_fit() {
    let (dns, ips) = names();
    let leaf = Leaf::Server {
        common_name: "x".into(),
        dns_names: dns,
        ip_addresses: ips,
    };
    let one = Ca::generate("one").unwrap();
    let other = Ca::generate("other").unwrap();
    let cert = one.issue(&leaf).unwrap();
    assert!(still_fits(&cert.cert_pem, &one, &leaf));
    assert!(!still_fits(&cert.cert_pem, &other, &leaf));
}

#[test]
fn damaged_or_half_present_ca_material_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let (dns, ips) = names();
    ClusterPki::load_or_create(dir.path(), &dns, &ips).unwrap();
    fs::write(dir.path().join("ca.key"), "not a key").unwrap();
    let err = ClusterPki::load_or_create(dir.path(), &dns, &ips)
        .err()
        .unwrap();
    assert!(err.to_string().contains("ca.crt"), "{err}");

    fs::remove_file(dir.path().join("ca.key")).unwrap();
    let err = ClusterPki::load_or_create(dir.path(), &dns, &ips)
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("only one of ca.crt and ca.key"),
        "{err}"
    );
}

#[test]
fn kubeconfig_embeds_everything_and_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let (dns, ips) = names();
    let pki = ClusterPki::load_or_create(&dir.path().join("tls"), &dns, &ips).unwrap();
    let kubeconfig = Kubeconfig {
        name: "default".into(),
        server: "https://127.0.0.1:6443".into(),
        ca_pem: pki.ca.cert_pem().to_owned(),
        client: pki.admin.clone(),
    };
    let path = dir.path().join("kube/config");
    kubeconfig.write(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains("server: \"https://127.0.0.1:6443\""));
    assert!(text.contains("current-context: \"default\""));
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    assert!(text.contains(&b64(pki.ca.cert_pem())));
    assert!(text.contains(&b64(&pki.admin.key_pem)));
    assert!(!format!("{:?}", pki.admin).contains("PRIVATE KEY"));
}

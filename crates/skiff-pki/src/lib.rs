//! skiff's certificates: a cluster certificate authority, the API server's serving certificate,
//! client certificates (CN = user, O = groups, as Kubernetes reads them) and kubeconfig files.
//!
//! Start at [`ClusterPki::load_or_create`]: on first start it generates a CA, a serving
//! certificate and an admin client certificate in a directory (keys mode 0600); later starts
//! reuse them, reissuing the serving certificate only when it lacks a requested name. It also
//! keeps the key that signs service-account tokens ([`SigningKey`]). This crate does no
//! networking and knows nothing of HTTP.

mod kubeconfig;
mod signing;

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

pub use kubeconfig::Kubeconfig;
pub use signing::{SignError, SigningKey};

/// Everything this crate can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A stored certificate or key could not be parsed or used.
    #[error("invalid certificate material in {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    /// Generating or signing failed (e.g. a name that is not a valid DNS name).
    #[error("cannot issue certificate for {subject}: {source}")]
    Issue {
        subject: String,
        #[source]
        source: rcgen::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How long issued leaf certificates are valid (like k3s: a year, renewed on restart when
/// close to expiry).
const LEAF_VALIDITY: Duration = Duration::days(365);
/// How long the CA is valid.
const CA_VALIDITY: Duration = Duration::days(3650);
/// Leaf certificates closer than this to expiry are reissued at start.
const RENEW_BEFORE: Duration = Duration::days(90);

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct CertifiedKey {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for CertifiedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("CertifiedKey")
            .field("cert_pem", &format_args!("{} bytes", self.cert_pem.len()))
            .finish_non_exhaustive()
    }
}

/// Who a leaf certificate is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leaf {
    /// A TLS server reachable under these DNS names and IP addresses.
    Server {
        common_name: String,
        dns_names: Vec<String>,
        ip_addresses: Vec<IpAddr>,
    },
    /// A client authenticating as `user` in `groups` (CN and O).
    Client { user: String, groups: Vec<String> },
}

/// The cluster's certificate authority.
pub struct Ca {
    cert_pem: String,
    key: KeyPair,
}

impl Ca {
    /// A new self-signed CA.
    pub fn generate(common_name: &str) -> Result<Ca> {
        let issue_error = |source| Error::Issue {
            subject: common_name.to_owned(),
            source,
        };
        let key = KeyPair::generate().map_err(issue_error)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name(common_name, &[]);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + CA_VALIDITY;
        let cert = params.self_signed(&key).map_err(issue_error)?;
        Ok(Ca {
            cert_pem: cert.pem(),
            key,
        })
    }

    /// A CA from its PEM certificate and key (`path` only names them in errors).
    pub fn from_pem(cert_pem: &str, key_pem: &str, path: &Path) -> Result<Ca> {
        let invalid = |reason: String| Error::Invalid {
            path: path.to_owned(),
            reason,
        };
        let key = KeyPair::from_pem(key_pem).map_err(|e| invalid(e.to_string()))?;
        // Parse now so a damaged certificate fails at start, not at first issue.
        Issuer::from_ca_cert_pem(cert_pem, &key).map_err(|e| invalid(e.to_string()))?;
        Ok(Ca {
            cert_pem: cert_pem.to_owned(),
            key,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a leaf certificate with a fresh key.
    pub fn issue(&self, leaf: &Leaf) -> Result<CertifiedKey> {
        let subject = match leaf {
            Leaf::Server { common_name, .. } => common_name.clone(),
            Leaf::Client { user, .. } => user.clone(),
        };
        let issue_error = |source| Error::Issue {
            subject: subject.clone(),
            source,
        };
        let mut params = CertificateParams::default();
        match leaf {
            Leaf::Server {
                common_name,
                dns_names,
                ip_addresses,
            } => {
                params.distinguished_name = name(common_name, &[]);
                params.subject_alt_names = dns_names
                    .iter()
                    .map(|n| {
                        n.clone()
                            .try_into()
                            .map(SanType::DnsName)
                            .map_err(issue_error)
                    })
                    .chain(ip_addresses.iter().map(|ip| Ok(SanType::IpAddress(*ip))))
                    .collect::<Result<_>>()?;
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            }
            Leaf::Client { user, groups } => {
                params.distinguished_name = name(user, groups);
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            }
        }
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + LEAF_VALIDITY;
        let key = KeyPair::generate().map_err(issue_error)?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, &self.key).map_err(issue_error)?;
        let cert = params.signed_by(&key, &issuer).map_err(issue_error)?;
        Ok(CertifiedKey {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn name(common_name: &str, organizations: &[String]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for org in organizations {
        dn.push(DnType::OrganizationName, org.as_str());
    }
    dn.push(DnType::CommonName, common_name);
    dn
}

/// The certificates a server keeps in its data directory.
pub struct ClusterPki {
    pub ca: Ca,
    pub serving: CertifiedKey,
    pub admin: CertifiedKey,
    /// Signs and verifies service-account tokens (`service.key`).
    pub service_account_key: SigningKey,
    dir: PathBuf,
}

/// The user and group of the admin kubeconfig (members of system:masters may do anything).
pub const ADMIN_USER: &str = "system:admin";
pub const ADMIN_GROUP: &str = "system:masters";

impl ClusterPki {
    /// Loads the CA and certificates from `dir`, creating what is missing. The serving
    /// certificate is reissued when it lacks one of `dns_names` / `ip_addresses` or is close to
    /// expiry.
    pub fn load_or_create(
        dir: &Path,
        dns_names: &[String],
        ip_addresses: &[IpAddr],
    ) -> Result<ClusterPki> {
        create_private_dir(dir)?;
        let ca_cert = dir.join("ca.crt");
        let ca_key = dir.join("ca.key");
        let ca = match (read_optional(&ca_cert)?, read_optional(&ca_key)?) {
            (Some(cert), Some(key)) => Ca::from_pem(&cert, &key, &ca_cert)?,
            (None, None) => {
                let ca = Ca::generate("skiff-ca")?;
                write_private(&ca_key, &ca.key.serialize_pem())?;
                write_public(&ca_cert, ca.cert_pem())?;
                ca
            }
            _ => {
                return Err(Error::Invalid {
                    path: dir.to_owned(),
                    reason: "only one of ca.crt and ca.key exists; restore the other or remove both to start a new cluster CA".to_owned(),
                });
            }
        };
        let serving_leaf = Leaf::Server {
            common_name: "kube-apiserver".to_owned(),
            dns_names: dns_names.to_vec(),
            ip_addresses: ip_addresses.to_vec(),
        };
        let serving = load_or_issue(&ca, dir, "serving", &serving_leaf)?;
        let admin_leaf = Leaf::Client {
            user: ADMIN_USER.to_owned(),
            groups: vec![ADMIN_GROUP.to_owned()],
        };
        let admin = load_or_issue(&ca, dir, "admin", &admin_leaf)?;
        let service_account_key = SigningKey::load_or_create(&dir.join("service.key"))?;
        Ok(ClusterPki {
            ca,
            serving,
            admin,
            service_account_key,
            dir: dir.to_owned(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Reuses `<name>.crt`/`<name>.key` if they still fit `leaf` and the CA, else issues anew.
fn load_or_issue(ca: &Ca, dir: &Path, name: &str, leaf: &Leaf) -> Result<CertifiedKey> {
    let cert_path = dir.join(format!("{name}.crt"));
    let key_path = dir.join(format!("{name}.key"));
    if let (Some(cert_pem), Some(key_pem)) = (read_optional(&cert_path)?, read_optional(&key_path)?)
        && still_fits(&cert_pem, ca, leaf)
    {
        return Ok(CertifiedKey { cert_pem, key_pem });
    }
    let issued = ca.issue(leaf)?;
    write_private(&key_path, &issued.key_pem)?;
    write_public(&cert_path, &issued.cert_pem)?;
    Ok(issued)
}

/// Whether a stored certificate was issued by `ca`, is not near expiry, and covers `leaf`.
fn still_fits(cert_pem: &str, ca: &Ca, leaf: &Leaf) -> bool {
    let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()) else {
        return false;
    };
    let Ok(cert) = pem.parse_x509() else {
        return false;
    };
    let Ok((_, ca_pem)) = x509_parser::pem::parse_x509_pem(ca.cert_pem.as_bytes()) else {
        return false;
    };
    let Ok(ca_cert) = ca_pem.parse_x509() else {
        return false;
    };
    if cert.verify_signature(Some(ca_cert.public_key())).is_err() {
        return false;
    }
    let expires = cert.validity().not_after.timestamp();
    if expires < (OffsetDateTime::now_utc() + RENEW_BEFORE).unix_timestamp() {
        return false;
    }
    match leaf {
        Leaf::Server {
            dns_names,
            ip_addresses,
            ..
        } => {
            let Ok(Some(san)) = cert.subject_alternative_name() else {
                return dns_names.is_empty() && ip_addresses.is_empty();
            };
            let mut have_dns = Vec::new();
            let mut have_ip = Vec::new();
            for name in &san.value.general_names {
                match name {
                    x509_parser::extensions::GeneralName::DNSName(d) => {
                        have_dns.push(d.to_string())
                    }
                    x509_parser::extensions::GeneralName::IPAddress(bytes) => {
                        have_ip.push(bytes.to_vec())
                    }
                    _ => {}
                }
            }
            dns_names.iter().all(|d| have_dns.contains(d))
                && ip_addresses.iter().all(|ip| {
                    let bytes = match ip {
                        IpAddr::V4(v4) => v4.octets().to_vec(),
                        IpAddr::V6(v6) => v6.octets().to_vec(),
                    };
                    have_ip.contains(&bytes)
                })
        }
        Leaf::Client { user, groups } => {
            let subject = cert.subject();
            let cn: Vec<&str> = subject
                .iter_common_name()
                .filter_map(|a| a.as_str().ok())
                .collect();
            let orgs: Vec<&str> = subject
                .iter_organization()
                .filter_map(|a| a.as_str().ok())
                .collect();
            cn == [user.as_str()] && groups.iter().all(|g| orgs.contains(&g.as_str()))
        }
    }
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            action: "reading",
            path: path.to_owned(),
            source,
        }),
    }
}

fn create_private_dir(dir: &Path) -> Result<()> {
    let io = |action, source| Error::Io {
        action,
        path: dir.to_owned(),
        source,
    };
    fs::create_dir_all(dir).map_err(|e| io("creating", e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| io("securing", e))
}

/// Writes a file readable by its owner only (keys, kubeconfigs), replacing it atomically.
pub fn write_private(path: &Path, contents: &str) -> Result<()> {
    write_with_mode(path, contents, 0o600)
}

fn write_public(path: &Path, contents: &str) -> Result<()> {
    write_with_mode(path, contents, 0o644)
}

fn write_with_mode(path: &Path, contents: &str, mode: u32) -> Result<()> {
    let io = |action, source| Error::Io {
        action,
        path: path.to_owned(),
        source,
    };
    let mut temp = path.as_os_str().to_owned();
    temp.push(".tmp");
    let temp = PathBuf::from(temp);
    let _ = fs::remove_file(&temp);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temp)
        .map_err(|e| io("creating", e))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| io("writing", e))?;
    fs::rename(&temp, path).map_err(|e| io("replacing", e))
}

#[cfg(test)]
mod tests;

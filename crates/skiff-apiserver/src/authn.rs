//! Authentication: who a request comes from. Client certificates signed by the cluster CA
//! carry the user in CN and groups in O, as Kubernetes reads them. Requests without a
//! verified identity are anonymous and refused outside the health endpoints.

use rustls::pki_types::CertificateDer;

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
}

/// Every authenticated user is also in this group, as in Kubernetes.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";

impl Identity {
    /// The identity in a client certificate that rustls has already verified against the
    /// cluster CA; `None` if it names no user.
    pub fn from_verified_certificate(cert: &CertificateDer<'_>) -> Option<Identity> {
        let (_, cert) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
        let subject = cert.subject();
        let user = subject
            .iter_common_name()
            .find_map(|cn| cn.as_str().ok())?
            .to_owned();
        if user.is_empty() {
            return None;
        }
        let mut groups: Vec<String> = subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok().map(str::to_owned))
            .collect();
        groups.push(AUTHENTICATED_GROUP.to_owned());
        Some(Identity { user, groups })
    }
}

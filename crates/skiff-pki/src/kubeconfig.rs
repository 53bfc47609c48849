//! kubeconfig files, as kubectl and client libraries read them.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::{CertifiedKey, Result, write_private};

/// One cluster, one user, one context: what `skiff server` hands to kubectl.
#[derive(Clone)]
pub struct Kubeconfig {
    /// Names the cluster, user and context (e.g. `default`, like k3s).
    pub name: String,
    /// `https://host:port` of the API server.
    pub server: String,
    pub ca_pem: String,
    pub client: CertifiedKey,
}

impl Kubeconfig {
    /// The YAML text. Certificates are embedded (base64 PEM), so the file stands alone.
    pub fn render(&self) -> String {
        let b64 = |s: &str| STANDARD.encode(s.as_bytes());
        let name = yaml_string(&self.name);
        format!(
            "apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: {name}\n  \
               cluster:\n    \
                 server: {server}\n    \
                 certificate-authority-data: {ca}\n\
             users:\n\
             - name: {name}\n  \
               user:\n    \
                 client-certificate-data: {cert}\n    \
                 client-key-data: {key}\n\
             contexts:\n\
             - name: {name}\n  \
               context:\n    \
                 cluster: {name}\n    \
                 user: {name}\n\
             current-context: {name}\n\
             preferences: {{}}\n",
            server = yaml_string(&self.server),
            ca = b64(&self.ca_pem),
            cert = b64(&self.client.cert_pem),
            key = b64(&self.client.key_pem),
        )
    }

    /// Writes the file, readable by its owner only (it holds a private key).
    pub fn write(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| crate::Error::Io {
                action: "creating",
                path: dir.to_owned(),
                source,
            })?;
        }
        write_private(path, &self.render())
    }
}

/// A double-quoted YAML scalar (valid JSON string syntax, which YAML accepts).
fn yaml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

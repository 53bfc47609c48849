//! Authentication: who a request comes from. Client certificates signed by the cluster CA
//! carry the user in CN and groups in O, as Kubernetes reads them. Requests without a
//! verified identity are anonymous and refused outside the health endpoints.

use rustls::pki_types::CertificateDer;

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    pub user: String,
    /// A unique id of the user, where the credential carries one (service accounts).
    pub uid: Option<String>,
    pub groups: Vec<String>,
    /// What else the authenticator knows (e.g. the pod a service-account token is bound to).
    pub extra: std::collections::BTreeMap<String, Vec<String>>,
}

/// Every authenticated user is also in this group, as in Kubernetes.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";

impl Identity {
    /// The identity as an authentication.k8s.io `UserInfo` (what `kubectl auth whoami`
    /// prints), leaving out what is not known.
    pub fn user_info(&self) -> serde_json::Value {
        let mut info = serde_json::json!({ "username": self.user, "groups": self.groups });
        if let Some(uid) = &self.uid {
            info["uid"] = uid.as_str().into();
        }
        if !self.extra.is_empty() {
            info["extra"] = serde_json::json!(self.extra);
        }
        info
    }

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
        Some(Identity {
            user,
            groups,
            ..Identity::default()
        })
    }
}

/// Static bearer tokens, read from a file in kube-apiserver's `--token-auth-file` format:
/// one `token,user,uid,"group1,group2"` per line (groups optional; `#` starts a comment).
#[derive(Default)]
pub struct StaticTokens {
    by_token: std::collections::HashMap<String, Identity>,
}

/// A token file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("reading token file {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("token file {path}, line {line}: {reason}")]
    Line {
        path: std::path::PathBuf,
        line: usize,
        reason: &'static str,
    },
}

impl StaticTokens {
    pub fn load(path: &std::path::Path) -> Result<StaticTokens, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|(line, reason)| TokenFileError::Line {
            path: path.to_owned(),
            line,
            reason,
        })
    }

    /// Parses the file's text; errors give the 1-based line and what is wrong with it.
    pub fn parse(text: &str) -> Result<StaticTokens, (usize, &'static str)> {
        let mut by_token = std::collections::HashMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.splitn(4, ',');
            let token = fields.next().unwrap_or_default().trim();
            let user = fields.next().unwrap_or_default().trim();
            let uid = fields
                .next()
                .ok_or((index + 1, "expected token,user,uid[,groups]"))?
                .trim();
            if token.is_empty() || user.is_empty() {
                return Err((index + 1, "token and user must not be empty"));
            }
            let mut groups: Vec<String> = fields
                .next()
                .map(|g| g.trim().trim_matches('"'))
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
                .collect();
            groups.push(AUTHENTICATED_GROUP.to_owned());
            let identity = Identity {
                user: user.to_owned(),
                uid: (!uid.is_empty()).then(|| uid.to_owned()),
                groups,
                ..Identity::default()
            };
            if by_token.insert(token.to_owned(), identity).is_some() {
                return Err((index + 1, "duplicate token"));
            }
        }
        Ok(StaticTokens { by_token })
    }

    /// The identity of an `Authorization` header value, if it is a known bearer token.
    pub fn authenticate(&self, authorization: &str) -> Option<&Identity> {
        self.by_token.get(bearer_token(authorization)?)
    }

    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }
}

/// The token of an `Authorization: Bearer <token>` header value.
pub(crate) fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_lines_become_identities() {
        let tokens = StaticTokens::parse(
            "# comment\n\nsecret1,alice,uid-1,\"devs,ops\"\nsecret2,bob,uid-2\n",
        )
        .unwrap();
        assert_eq!(tokens.len(), 2);
        let alice = tokens.authenticate("Bearer secret1").unwrap();
        assert_eq!(alice.user, "alice");
        assert_eq!(alice.groups, ["devs", "ops", AUTHENTICATED_GROUP]);
        assert_eq!(
            tokens.authenticate("bearer secret2").unwrap().groups,
            [AUTHENTICATED_GROUP]
        );
        assert!(tokens.authenticate("Bearer nope").is_none());
        assert!(tokens.authenticate("Basic secret1").is_none());
    }

    #[test]
    fn bad_token_lines_name_the_line() {
        assert_eq!(
            StaticTokens::parse("ok,u,1\nbroken\n").err(),
            Some((2, "expected token,user,uid[,groups]"))
        );
        assert_eq!(
            StaticTokens::parse(",u,1\n").err(),
            Some((1, "token and user must not be empty"))
        );
        assert_eq!(
            StaticTokens::parse("t,u,1\nt,v,2\n").err(),
            Some((2, "duplicate token"))
        );
    }
}

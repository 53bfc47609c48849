//! Choosing a backend from the `--datastore` argument: a path or `sqlite://` URL selects the
//! embedded SQLite file, a `postgres://` (or `postgresql://`) URL selects a shared Postgres.

use std::path::PathBuf;

use crate::{Error, Result};

/// Where the store keeps its data.
#[derive(Clone, PartialEq, Eq)]
pub enum Datastore {
    /// One SQLite file (created if missing), WAL mode.
    Sqlite(PathBuf),
    /// A Postgres database, possibly shared by several servers.
    Postgres(String),
}

impl Datastore {
    pub fn parse(s: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidDatastore {
            datastore: redact(s),
            reason: reason.to_owned(),
        };
        if s.is_empty() {
            return Err(invalid("empty datastore"));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(Datastore::Postgres(s.to_owned()));
        }
        if let Some(path) = s.strip_prefix("sqlite://") {
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(invalid("sqlite:// needs a file path"));
            }
            return Ok(Datastore::Sqlite(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = s.split_once("://") {
            return Err(invalid(&format!(
                "unsupported scheme {scheme:?}; use a file path, sqlite://PATH or postgres://URL"
            )));
        }
        Ok(Datastore::Sqlite(PathBuf::from(s)))
    }

    /// A description safe to log and show: passwords are masked.
    pub fn describe(&self) -> String {
        match self {
            Datastore::Sqlite(path) => format!("sqlite database {}", path.display()),
            Datastore::Postgres(url) => format!("postgres database {}", redact(url)),
        }
    }
}

impl std::fmt::Debug for Datastore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Masks the password in `scheme://user:password@host/...`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_urls() {
        assert_eq!(
            Datastore::parse("/var/lib/skiff/state.db").unwrap(),
            Datastore::Sqlite("/var/lib/skiff/state.db".into())
        );
        assert_eq!(
            Datastore::parse("sqlite:///tmp/x.db?mode=rwc").unwrap(),
            Datastore::Sqlite("/tmp/x.db".into())
        );
        assert!(matches!(
            Datastore::parse("postgresql://u@h/db").unwrap(),
            Datastore::Postgres(_)
        ));
        assert!(Datastore::parse("mysql://x").is_err());
        assert!(Datastore::parse("").is_err());
    }

    #[test]
    fn passwords_never_reach_messages() {
        let url = "postgres://skiff:s3cret@db.example:5432/k8s";
        assert_eq!(redact(url), "postgres://skiff:***@db.example:5432/k8s");
        let ds = Datastore::parse(url).unwrap();
        assert!(!ds.describe().contains("s3cret"));
        assert!(!format!("{ds:?}").contains("s3cret"));
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}

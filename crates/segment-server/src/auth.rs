//! Delegation tokens: the controller hands clients a signed token per stream; the segment store
//! checks it on every request that names a segment.
//!
//! A token is a JWT (HS256 or HS512, as Pravega signs them) with the standard `exp` claim and one
//! claim per resource it grants, as Pravega's tokens carry them:
//! `"prn::/scope:<scope>/stream:<stream>": "READ" | "READ_UPDATE"`. A scope-wide grant
//! `"prn::/scope:<scope>"` or a global grant `"prn::/"` covers every stream below it.
//! With auth off (no verifier configured) tokens are ignored, as Pravega does.

use std::collections::HashMap;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};

/// What a request needs on the stream its segment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Permission {
    Read,
    ReadUpdate,
}

impl Permission {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "READ" => Some(Self::Read),
            "READ_UPDATE" => Some(Self::ReadUpdate),
            _ => None,
        }
    }
}

/// Why a token was refused; the code is what `AuthTokenCheckFailed` carries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the delegation token has expired")]
    Expired,
    #[error("the delegation token is invalid: {0}")]
    Invalid(String),
    #[error("the delegation token does not grant {needed:?} on {resource}")]
    NotPermitted {
        resource: String,
        needed: Permission,
    },
}

impl TokenError {
    /// The protocol's error code: 1 = expired, 0 = check failed.
    pub fn code(&self) -> i32 {
        match self {
            Self::Expired => 1,
            Self::Invalid(_) | Self::NotPermitted { .. } => 0,
        }
    }
}

/// Checks delegation tokens signed with a key shared with the controller.
#[derive(Clone)]
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier").finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// A verifier for tokens signed with `signing_key` (HMAC).
    pub fn new(signing_key: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256, Algorithm::HS512];
        validation.leeway = 0;
        validation.validate_aud = false;
        validation.required_spec_claims = ["exp".to_owned()].into_iter().collect();
        Self {
            key: DecodingKey::from_secret(signing_key),
            validation,
        }
    }

    /// Accepts `token` if it is valid and grants `needed` on the stream that owns `segment`.
    pub fn verify(&self, token: &str, segment: &str, needed: Permission) -> Result<(), TokenError> {
        if token.is_empty() {
            return Err(TokenError::Invalid("no token was given".into()));
        }
        let claims = jsonwebtoken::decode::<HashMap<String, serde_json::Value>>(
            token,
            &self.key,
            &self.validation,
        )
        .map_err(|error| match error.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid(error.to_string()),
        })?
        .claims;
        let resource = stream_resource(segment);
        let granted = claims
            .iter()
            .filter(|(name, _)| covers(name, &resource))
            .filter_map(|(_, level)| level.as_str().and_then(Permission::parse))
            .max();
        match granted {
            Some(level) if level >= needed => Ok(()),
            _ => Err(TokenError::NotPermitted { resource, needed }),
        }
    }
}

/// The resource name of the stream a segment belongs to: `prn::/scope:<scope>/stream:<stream>`.
/// Names that are not qualified stream segments are their own resource.
pub fn stream_resource(segment: &str) -> String {
    let primary = pravaha_types::primary_segment_name(segment);
    let mut parts = primary.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(scope), Some(stream), Some(_)) => format!("prn::/scope:{scope}/stream:{stream}"),
        _ => format!("prn::/segment:{primary}"),
    }
}

fn covers(grant: &str, resource: &str) -> bool {
    grant == resource
        || grant == "prn::/"
        || grant == "prn::/*"
        || (grant.starts_with("prn::/scope:")
            && !grant.contains("/stream:")
            && resource
                .strip_prefix(grant)
                .is_some_and(|rest| rest.starts_with("/stream:")))
        || grant.strip_suffix("/stream:*").is_some_and(|scope| {
            resource
                .strip_prefix(scope)
                .is_some_and(|r| r.starts_with("/stream:"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};

    fn token(claims: serde_json::Value, algorithm: Algorithm) -> String {
        jsonwebtoken::encode(
            &Header::new(algorithm),
            &claims,
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap()
    }

    fn exp(from_now: i64) -> i64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        i64::try_from(now).unwrap() + from_now
    }

    #[test]
    fn grants_are_matched_to_the_segments_stream() {
        let verifier = TokenVerifier::new(b"secret");
        let t = token(
            serde_json::json!({"exp": exp(600), "prn::/scope:sc/stream:st": "READ"}),
            Algorithm::HS512,
        );
        let segment = "sc/st/0.#epoch.0";
        assert_eq!(verifier.verify(&t, segment, Permission::Read), Ok(()));
        assert!(matches!(
            verifier.verify(&t, segment, Permission::ReadUpdate),
            Err(TokenError::NotPermitted { .. })
        ));
        assert!(matches!(
            verifier.verify(&t, "sc/other/0.#epoch.0", Permission::Read),
            Err(TokenError::NotPermitted { .. })
        ));
        // Transaction segments belong to their parent's stream.
        let txn = "sc/st/0.#epoch.0#transaction.00000000000000010000000000000002";
        assert_eq!(verifier.verify(&t, txn, Permission::Read), Ok(()));
    }

    #[test]
    fn scope_and_global_grants_cover_streams() {
        let verifier = TokenVerifier::new(b"secret");
        let scope = token(
            serde_json::json!({"exp": exp(600), "prn::/scope:sc": "READ_UPDATE"}),
            Algorithm::HS256,
        );
        assert_eq!(
            verifier.verify(&scope, "sc/st/1.#epoch.2", Permission::ReadUpdate),
            Ok(())
        );
        assert!(verifier
            .verify(&scope, "scx/st/1.#epoch.2", Permission::Read)
            .is_err());
        let global = token(
            serde_json::json!({"exp": exp(600), "prn::/": "READ_UPDATE"}),
            Algorithm::HS256,
        );
        assert_eq!(
            verifier.verify(&global, "a/b/0.#epoch.0", Permission::ReadUpdate),
            Ok(())
        );
    }

    #[test]
    fn expired_forged_and_missing_tokens_are_refused_with_their_codes() {
        let verifier = TokenVerifier::new(b"secret");
        let expired = token(
            serde_json::json!({"exp": exp(-60), "prn::/": "READ_UPDATE"}),
            Algorithm::HS256,
        );
        let error = verifier
            .verify(&expired, "a/b/0.#epoch.0", Permission::Read)
            .unwrap_err();
        assert_eq!(error, TokenError::Expired);
        assert_eq!(error.code(), 1);

        let forged = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"exp": exp(600), "prn::/": "READ_UPDATE"}),
            &EncodingKey::from_secret(b"another key"),
        )
        .unwrap();
        let error = verifier
            .verify(&forged, "a/b/0.#epoch.0", Permission::Read)
            .unwrap_err();
        assert!(matches!(error, TokenError::Invalid(_)));
        assert_eq!(error.code(), 0);
        assert!(matches!(
            verifier.verify("", "a/b/0.#epoch.0", Permission::Read),
            Err(TokenError::Invalid(_))
        ));
        assert!(matches!(
            verifier.verify("not.a.jwt", "a/b/0.#epoch.0", Permission::Read),
            Err(TokenError::Invalid(_))
        ));
    }
}

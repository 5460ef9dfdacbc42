//! Credentials at the controller: users and password digests from a password file in Pravega's
//! format, checked for every gRPC and REST call when auth is on.
//!
//! A line of the file is `user:digest:acl` (`#` starts a comment line; the ACL is optional).
//! The digest is Pravega's `StrongPasswordProcessor` encoding, so that Pravega's password files
//! work unchanged: the lower-case hex of the ASCII text `iterations:hex(salt):hex(hash)`, where
//! `hash` is PBKDF2-HMAC-SHA256 of the UTF-8 password, 64 bytes long. [`hash_password`] makes
//! one with a 32-byte random salt and 5000 iterations, as Pravega's tool does.
//!
//! Clients send `authorization: Basic base64(user:password)`, as Pravega's clients do with
//! their default credentials.
//!
//! A user's ACL is a `;`-separated list of `RESOURCE_PATTERN,PERMISSION` entries, e.g.
//! `prn::/scope:shop,READ_UPDATE;prn::/scope:shop/*,READ`. As in Pravega, the first entry whose
//! pattern matches the whole resource name decides (`*` matches any text), no match means
//! `NONE`, and an entry that is not `pattern,NONE|READ|READ_UPDATE` is ignored. Resource names
//! are Pravega's: see [`resource`].

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Length of the derived key, as Pravega's processor makes it (64 × 8 bits).
const HASH_BYTES: usize = 64;
const SALT_BYTES: usize = 32;
const ITERATIONS: u32 = 5000;
/// Verified credentials remembered, so that a client's calls do not each pay for PBKDF2.
const VERIFIED_CACHE_LIMIT: usize = 1024;

/// A password file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("reading the password file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("password file {path}, line {line}: {reason}")]
    Invalid {
        path: String,
        line: usize,
        reason: String,
    },
}

/// Why a call's credentials were refused (the message a client gets).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("authentication required: send `authorization: Basic base64(user:password)`")]
    Missing,
    #[error("unsupported authorization method {0:?}: the controller accepts Basic")]
    UnsupportedMethod(String),
    #[error("malformed Basic credentials")]
    Malformed,
    #[error("invalid user name or password")]
    Invalid,
}

struct User {
    digest: Digest64,
    acl: Vec<AccessEntry>,
}

/// What a user may do with a resource, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Permission {
    None,
    Read,
    ReadUpdate,
}

impl Permission {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "NONE" => Some(Self::None),
            "READ" => Some(Self::Read),
            "READ_UPDATE" => Some(Self::ReadUpdate),
            _ => None,
        }
    }

    /// The name Pravega uses (in ACLs and delegation tokens).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::Read => "READ",
            Self::ReadUpdate => "READ_UPDATE",
        }
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One ACL entry: a resource pattern (`*` matches any text) and what it grants.
#[derive(Debug, Clone)]
struct AccessEntry {
    pattern: String,
    permission: Permission,
}

/// Parses an ACL; malformed entries are skipped, as Pravega skips them.
fn parse_acl(acl: &str) -> Vec<AccessEntry> {
    acl.split(';')
        .filter_map(|entry| {
            let mut fields = entry.split(',');
            let (Some(pattern), Some(permission), None) =
                (fields.next(), fields.next(), fields.next())
            else {
                return None;
            };
            let pattern = pattern.trim();
            if pattern.is_empty() {
                return None;
            }
            Some(AccessEntry {
                pattern: pattern.to_owned(),
                permission: Permission::parse(permission.trim())?,
            })
        })
        .collect()
}

/// Whether `pattern` matches all of `text`, `*` matching any run of characters.
fn matches(pattern: &str, text: &str) -> bool {
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return rest.is_empty();
    };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// Pravega's resource names, which ACL patterns and delegation tokens refer to.
pub mod resource {
    /// Everything: the system as a whole (creating and listing scopes).
    pub fn root() -> String {
        "prn::/".to_owned()
    }

    pub fn scope(scope: &str) -> String {
        format!("prn::/scope:{scope}")
    }

    pub fn stream(scope: &str, stream: &str) -> String {
        format!("prn::/scope:{scope}/stream:{stream}")
    }

    pub fn reader_group(scope: &str, group: &str) -> String {
        format!("prn::/scope:{scope}/reader-group:{group}")
    }

    pub fn key_value_table(scope: &str, table: &str) -> String {
        format!("prn::/scope:{scope}/key-value-table:{table}")
    }
}

/// A decoded password digest.
struct Digest64 {
    iterations: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

/// The authenticated user of a call, put in the request's extensions by the listeners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub String);

/// A call refused for want of a permission; the message names who, what and on what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{user} has {granted} on {resource}; this call needs {needed}")]
pub struct Denied {
    pub user: String,
    pub granted: Permission,
    pub resource: String,
    pub needed: Permission,
}

/// The users of a password file.
pub struct Users {
    users: HashMap<String, User>,
    /// SHA-256 of `secret || authorization header` for headers that passed (never the
    /// passwords themselves); `secret` is random per process.
    verified: Mutex<HashSet<[u8; 32]>>,
    secret: [u8; 32],
    /// Checked against for unknown users (see [`Users::authenticate`]).
    decoy: Digest64,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.users.keys().collect();
        names.sort();
        f.debug_struct("Users").field("names", &names).finish()
    }
}

impl Users {
    /// Reads a password file.
    pub fn load(path: &Path) -> Result<Self, UsersError> {
        let text = std::fs::read_to_string(path).map_err(|source| UsersError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|(line, reason)| UsersError::Invalid {
            path: path.display().to_string(),
            line,
            reason,
        })
    }

    /// Parses a password file's text; on error the 1-based line and what is wrong with it.
    pub fn parse(text: &str) -> Result<Self, (usize, String)> {
        let mut users = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.splitn(3, ':');
            let name = fields.next().unwrap_or_default();
            let Some(digest) = fields.next() else {
                return Err((index + 1, "expected user:digest[:acl]".into()));
            };
            if name.is_empty() {
                return Err((index + 1, "empty user name".into()));
            }
            let digest = decode_digest(digest).map_err(|reason| (index + 1, reason))?;
            let acl = parse_acl(fields.next().unwrap_or_default());
            if users
                .insert(name.to_owned(), User { digest, acl })
                .is_some()
            {
                return Err((index + 1, format!("user {name:?} is listed twice")));
            }
        }
        if users.is_empty() {
            return Err((0, "no users".into()));
        }
        let mut secret = [0_u8; 32];
        rand::Rng::fill(&mut rand::thread_rng(), &mut secret[..]);
        let decoy = decode_digest(&hash_password("decoy")).expect("a digest of our own");
        Ok(Self {
            users,
            verified: Mutex::default(),
            secret,
            decoy,
        })
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// What `user` may do with `resource` (`NONE` for an unknown user).
    pub fn permission(&self, user: &str, resource: &str) -> Permission {
        self.users
            .get(user)
            .and_then(|user| {
                user.acl
                    .iter()
                    .find(|entry| matches(&entry.pattern, resource))
            })
            .map_or(Permission::None, |entry| entry.permission)
    }

    /// Checks an `authorization` header value; returns the user's name.
    pub fn authenticate(&self, header: Option<&str>) -> Result<String, AuthFailure> {
        let header = header.ok_or(AuthFailure::Missing)?.trim();
        let (method, credentials) = header.split_once(' ').unwrap_or((header, ""));
        if !method.eq_ignore_ascii_case("basic") {
            return Err(AuthFailure::UnsupportedMethod(method.to_owned()));
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(credentials.trim())
            .map_err(|_| AuthFailure::Malformed)?;
        let decoded = String::from_utf8(decoded).map_err(|_| AuthFailure::Malformed)?;
        let (name, password) = decoded.split_once(':').ok_or(AuthFailure::Malformed)?;
        let Some(user) = self.users.get(name) else {
            // As long as a wrong password takes, so that timing does not tell who exists.
            check(&self.decoy, password);
            return Err(AuthFailure::Invalid);
        };
        let key = self.cache_key(header);
        if self.verified_contains(&key) {
            return Ok(name.to_owned());
        }
        if !check(&user.digest, password) {
            return Err(AuthFailure::Invalid);
        }
        let mut verified = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if verified.len() >= VERIFIED_CACHE_LIMIT {
            verified.clear();
        }
        verified.insert(key);
        Ok(name.to_owned())
    }

    fn cache_key(&self, header: &str) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(self.secret);
        hasher.update(header.as_bytes());
        hasher.finalize().into()
    }

    fn verified_contains(&self, key: &[u8; 32]) -> bool {
        self.verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(key)
    }
}

/// A digest for `password` in the password file's format (random salt).
pub fn hash_password(password: &str) -> String {
    let mut salt = [0_u8; SALT_BYTES];
    rand::Rng::fill(&mut rand::thread_rng(), &mut salt[..]);
    encode_digest(password, &salt, ITERATIONS)
}

fn encode_digest(password: &str, salt: &[u8], iterations: u32) -> String {
    let hash = derive(password, salt, iterations);
    let text = format!("{iterations}:{}:{}", hex(salt), hex(&hash));
    hex(text.as_bytes())
}

fn derive(password: &str, salt: &[u8], iterations: u32) -> [u8; HASH_BYTES] {
    let mut hash = [0_u8; HASH_BYTES];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut hash);
    hash
}

fn decode_digest(encoded: &str) -> Result<Digest64, String> {
    let text = unhex(encoded.trim()).ok_or("the digest is not hex")?;
    let text = String::from_utf8(text).map_err(|_| "the digest is not a password digest")?;
    let mut parts = text.split(':');
    let (Some(iterations), Some(salt), Some(hash), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("the digest is not iterations:salt:hash".into());
    };
    let iterations: u32 = iterations
        .parse()
        .ok()
        .filter(|&n| n > 0)
        .ok_or("the digest's iteration count is not a positive number")?;
    let salt = unhex(salt).ok_or("the digest's salt is not hex")?;
    let hash = unhex(hash).ok_or("the digest's hash is not hex")?;
    if hash.len() != HASH_BYTES {
        return Err(format!(
            "the digest's hash has {} bytes, expected {HASH_BYTES}",
            hash.len()
        ));
    }
    Ok(Digest64 {
        iterations,
        salt,
        hash,
    })
}

/// Whether `password` matches, compared in time independent of where they differ.
fn check(digest: &Digest64, password: &str) -> bool {
    let derived = derive(password, &digest.salt, digest.iterations);
    let difference = derived
        .iter()
        .zip(&digest.hash)
        .fold(0_u8, |acc, (a, b)| acc | (a ^ b));
    difference == 0
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> String {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {encoded}")
    }

    /// PBKDF2-HMAC-SHA256 of "secret" with salt 00 01 .. 1f, 5000 iterations, 64 bytes, as
    /// Python's `hashlib.pbkdf2_hmac` computes it (an independent implementation).
    const GOLDEN_HASH: &str = "98db2bb0ff3e5f37b556bb53f8c83cb8c1a62432dd799e34e64fcfb8f2edec217c284dbf7a98805def1e2a47c156c61a743df1c35cb72736012a7bcd01243126";

    #[test]
    fn digests_match_an_independent_pbkdf2() {
        let salt: Vec<u8> = (0..32).collect();
        assert_eq!(hex(&derive("secret", &salt, 5000)), GOLDEN_HASH);
        let encoded = encode_digest("secret", &salt, 5000);
        let text = String::from_utf8(unhex(&encoded).unwrap()).unwrap();
        assert_eq!(text, format!("5000:{}:{GOLDEN_HASH}", hex(&salt)));
    }

    #[test]
    fn users_authenticate_with_basic_credentials_only() {
        let file = format!(
            "# users\nadmin:{}:prn::*,READ_UPDATE\nreader:{}:prn::/scope:s,READ\n",
            hash_password("1111_aaaa"),
            hash_password("r")
        );
        let users = Users::parse(&file).unwrap();
        assert_eq!(users.len(), 2);
        let admin = basic("admin", "1111_aaaa");
        assert_eq!(users.authenticate(Some(&admin)), Ok("admin".into()));
        // Again, from the cache.
        assert_eq!(users.authenticate(Some(&admin)), Ok("admin".into()));
        assert_eq!(
            users.authenticate(Some(&basic("admin", "wrong"))),
            Err(AuthFailure::Invalid)
        );
        assert_eq!(
            users.authenticate(Some(&basic("nobody", "1111_aaaa"))),
            Err(AuthFailure::Invalid)
        );
        assert_eq!(users.authenticate(None), Err(AuthFailure::Missing));
        assert_eq!(
            users.authenticate(Some("Bearer abc")),
            Err(AuthFailure::UnsupportedMethod("Bearer".into()))
        );
        assert_eq!(
            users.authenticate(Some("Basic !!!")),
            Err(AuthFailure::Malformed)
        );
    }

    #[test]
    fn the_first_matching_acl_entry_decides() {
        let file = format!(
            "admin:{d}:prn::*,READ_UPDATE\n\
             shop:{d}:prn::/scope:shop/stream:audit,READ; prn::/scope:shop*,READ_UPDATE;\
             prn::/,READ;bad entry;prn::/scope:x,WRITE\n\
             none:{d}\n",
            d = hash_password("p")
        );
        let users = Users::parse(&file).unwrap();
        let check = |user: &str, resource: String| users.permission(user, &resource);
        assert_eq!(check("admin", resource::root()), Permission::ReadUpdate);
        assert_eq!(
            check("admin", resource::stream("any", "thing")),
            Permission::ReadUpdate
        );
        assert_eq!(
            check("shop", resource::scope("shop")),
            Permission::ReadUpdate
        );
        assert_eq!(
            check("shop", resource::stream("shop", "orders")),
            Permission::ReadUpdate
        );
        // An earlier entry wins over a later, broader one.
        assert_eq!(
            check("shop", resource::stream("shop", "audit")),
            Permission::Read
        );
        assert_eq!(check("shop", resource::root()), Permission::Read);
        assert_eq!(check("shop", resource::scope("other")), Permission::None);
        // The malformed entries were skipped.
        assert_eq!(check("shop", resource::scope("x")), Permission::None);
        assert_eq!(check("none", resource::root()), Permission::None);
        assert_eq!(check("nobody", resource::root()), Permission::None);
    }

    #[test]
    fn patterns_match_whole_names() {
        assert!(matches("prn::*", "prn::/scope:a/stream:b"));
        assert!(matches("prn::/scope:a/*", "prn::/scope:a/stream:b"));
        assert!(!matches("prn::/scope:a/*", "prn::/scope:a"));
        assert!(matches("prn::/scope:a", "prn::/scope:a"));
        assert!(!matches("prn::/scope:a", "prn::/scope:ab"));
        assert!(matches("prn::/scope:*/stream:b", "prn::/scope:a/stream:b"));
        assert!(!matches(
            "prn::/scope:*/stream:b",
            "prn::/scope:a/stream:bc"
        ));
        assert!(matches("*", ""));
    }

    #[test]
    fn bad_files_name_the_line() {
        let digest = hash_password("x");
        for (text, line) in [
            (format!("a:{digest}\nb\n"), 2),
            (format!("a:{digest}\na:{digest}\n"), 2),
            ("a:zz\n".to_owned(), 1),
            (format!(":{digest}\n"), 1),
            ("# nothing\n".to_owned(), 0),
        ] {
            let Err((at, _)) = Users::parse(&text) else {
                panic!("{text:?} was accepted");
            };
            assert_eq!(at, line, "{text:?}");
        }
    }
}

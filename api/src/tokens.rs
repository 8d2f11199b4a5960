//! Credentials: argon2id password hashes, signed access tokens (HS256 JWTs), opaque refresh tokens, and the signing
//! key (from configuration, or a development key generated under the data directory).
//!
//! Access tokens are short-lived and not stored: a valid signature and an expiry in the future are enough (the
//! account's capabilities are read from the store at each request, so a revocation applies at once). Refresh tokens
//! are random, stored hashed, and rotate on every use (see `Store::rotate_refresh_token`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The shortest signing key accepted from configuration, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;
/// The file under the data directory that holds the generated development key.
pub const DEV_KEY_FILE: &str = "jwt-dev-secret";
/// The issuer named in (and required of) every access token.
pub const ISSUER: &str = "orrery";

/// Failures of the credential helpers (configuration and hashing; a bad token is not an error, just `None`).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the JWT signing key must be at least {MIN_SECRET_BYTES} bytes (--jwt-secret / ORRERY_JWT_SECRET / --jwt-secret-file)")]
    ShortSecret,
    #[error("reading the JWT signing key from {0}: {1}")]
    KeyFile(PathBuf, std::io::Error),
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("signing a token failed: {0}")]
    Sign(String),
}

/// Hashes a password with argon2id (default parameters: 19 MiB, 2 passes) and a random salt; a PHC string.
pub fn hash_password(password: &str) -> Result<String, TokenError> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| TokenError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| TokenError::Hash(e.to_string()))
}

/// Whether `password` matches a PHC hash (false for a hash that does not parse).
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A hash no password matches, verified against when the username is unknown so that a wrong username takes as
/// long as a wrong password.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&crate::tokens::random_token()).unwrap_or_default())
}

/// A fresh opaque token (32 random bytes, URL-safe base64): refresh tokens.
pub fn random_token() -> String {
    orrery_actors::store::new_token()
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The account id.
    pub sub: Uuid,
    /// Issued at, seconds since the Unix epoch.
    pub iat: i64,
    /// Expires at, seconds since the Unix epoch.
    pub exp: i64,
    pub iss: String,
}

/// Signs and checks access tokens.
pub struct Signer {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// How long an access token is valid.
    pub ttl: Duration,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    orrery_actors::store::now_millis() / 1000
}

impl Signer {
    /// A signer with this HMAC key (at least [`MIN_SECRET_BYTES`]).
    pub fn new(secret: &[u8], ttl: Duration) -> Result<Self, TokenError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(TokenError::ShortSecret);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked here against our clock, with no leeway (see `verify_at`).
        validation.validate_exp = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        validation.set_issuer(&[ISSUER]);
        Ok(Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        })
    }

    /// An access token for `account`, issued now.
    pub fn issue(&self, account: Uuid) -> Result<String, TokenError> {
        self.issue_at(account, now_secs())
    }

    /// An access token for `account` as if issued at `iat` (seconds since the epoch): tests issue expired ones.
    pub fn issue_at(&self, account: Uuid, iat: i64) -> Result<String, TokenError> {
        let claims = Claims {
            sub: account,
            iat,
            exp: iat + self.ttl.as_secs().max(1) as i64,
            iss: ISSUER.to_owned(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| TokenError::Sign(e.to_string()))
    }

    /// The account of a valid, unexpired access token.
    pub fn verify(&self, token: &str) -> Option<Uuid> {
        self.verify_at(token, now_secs())
    }

    /// The account of a token valid at `now` (seconds since the epoch): signed with our key, by us, not expired.
    pub fn verify_at(&self, token: &str, now: i64) -> Option<Uuid> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        (data.claims.exp > now).then_some(data.claims.sub)
    }
}

/// Whether a bearer token is shaped like a JWT (three dot-separated parts); guest tokens have no dot.
pub fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|&b| b == b'.').count() == 2
}

/// The signing key: the configured secret, else the configured key file, else the development key under
/// `data_dir` (generated on first use, with a warning: tokens signed with it are only as safe as that file).
pub fn load_secret(secret: Option<&str>, file: Option<&Path>, data_dir: &Path) -> Result<Vec<u8>, TokenError> {
    if let Some(secret) = secret {
        let bytes = secret.trim().as_bytes().to_vec();
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(TokenError::ShortSecret);
        }
        return Ok(bytes);
    }
    if let Some(file) = file {
        let text = std::fs::read_to_string(file).map_err(|e| TokenError::KeyFile(file.to_owned(), e))?;
        let bytes = text.trim().as_bytes().to_vec();
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(TokenError::ShortSecret);
        }
        return Ok(bytes);
    }
    let path = data_dir.join(DEV_KEY_FILE);
    let key = match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= MIN_SECRET_BYTES => text.trim().to_owned(),
        _ => {
            std::fs::create_dir_all(data_dir).map_err(|e| TokenError::KeyFile(path.clone(), e))?;
            let key = format!("{}{}", random_token(), random_token());
            write_private(&path, &key).map_err(|e| TokenError::KeyFile(path.clone(), e))?;
            key
        }
    };
    tracing::warn!(
        file = %path.display(),
        "no JWT signing key configured (--jwt-secret, ORRERY_JWT_SECRET or --jwt-secret-file): using a development \
         key stored in the data directory; configure a key in production"
    );
    Ok(key.into_bytes())
}

/// Writes a file readable by its owner only (on Unix).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "correct horsE"));
        assert!(!verify_password("not a hash", "correct horse"));
        assert_ne!(h, hash_password("correct horse").unwrap(), "a fresh salt each time");
        assert!(!verify_password(dummy_hash(), ""));
    }

    #[test]
    fn access_tokens_expire_and_refuse_tampering_and_other_keys() {
        let signer = Signer::new(KEY, Duration::from_secs(60)).unwrap();
        let who = Uuid::new_v4();
        let now = 1_000_000;
        let token = signer.issue_at(who, now).unwrap();
        assert!(looks_like_jwt(&token));
        assert_eq!(signer.verify_at(&token, now), Some(who));
        assert_eq!(signer.verify_at(&token, now + 59), Some(who));
        assert_eq!(signer.verify_at(&token, now + 60), None, "expired");
        // A changed payload (another account) no longer matches the signature.
        let parts: Vec<&str> = token.split('.').collect();
        let other = Signer::new(KEY, Duration::from_secs(60))
            .unwrap()
            .issue_at(Uuid::new_v4(), now)
            .unwrap();
        let forged = format!("{}.{}.{}", parts[0], other.split('.').nth(1).unwrap(), parts[2]);
        assert_eq!(signer.verify_at(&forged, now), None);
        // Signed with another key.
        let stranger = Signer::new(b"another key of thirty-two bytes!!", Duration::from_secs(60)).unwrap();
        assert_eq!(signer.verify_at(&stranger.issue_at(who, now).unwrap(), now), None);
        assert_eq!(signer.verify_at("not.a.jwt", now), None);
        assert!(!looks_like_jwt(&random_token()));
        assert!(matches!(
            Signer::new(b"short", Duration::from_secs(1)),
            Err(TokenError::ShortSecret)
        ));
    }

    #[test]
    fn the_development_key_is_generated_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("orrery-key-{}", Uuid::new_v4()));
        let first = load_secret(None, None, &dir).unwrap();
        assert!(first.len() >= MIN_SECRET_BYTES);
        assert_eq!(load_secret(None, None, &dir).unwrap(), first);
        assert_eq!(
            load_secret(Some("x".repeat(40).as_str()), None, &dir).unwrap(),
            "x".repeat(40).into_bytes()
        );
        assert!(matches!(
            load_secret(Some("short"), None, &dir),
            Err(TokenError::ShortSecret)
        ));
        let _ = std::fs::remove_dir_all(dir);
    }
}

//! How a session logs in: password, key pair (a JWT signed with a PKCS#8 RSA key, decrypted here
//! when encrypted), or an OAuth access token (also how code inside Snowpark Container Services
//! logs in, with its token file; and, per viewer, a caller's-rights connection).

use std::path::PathBuf;

use pkcs8::der::SecretDocument;
use pkcs8::{EncryptedPrivateKeyInfo, LineEnding};

use connections_core::Result;

use crate::config::read_key_file;
use crate::secret::Secret;
use crate::sources::Sources;

/// How to log in. `Debug` never shows a secret.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Auth {
    /// User name and password (authenticator `snowflake`).
    Password {
        /// The password.
        password: Secret,
    },
    /// Key pair (authenticator `snowflake_jwt`): a JWT signed with this unencrypted PKCS#8 PEM
    /// RSA key, made fresh at each login.
    KeyPair {
        /// The private key, PEM, decrypted.
        private_key_pem: Secret,
    },
    /// An OAuth access token (authenticator `oauth`).
    OAuth {
        /// Where the token is.
        token: TokenSource,
    },
}

/// Where an OAuth token comes from.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum TokenSource {
    /// The token itself.
    Value(Secret),
    /// A file holding it, read at each login (Snowpark Container Services rotates it).
    File(PathBuf),
}

impl TokenSource {
    /// The token now: the value, or the file's content without surrounding white space.
    ///
    /// ```
    /// use connections_snowflake::{Secret, TokenSource};
    /// let token = TokenSource::Value(Secret::new("abc"));
    /// assert_eq!(token.read().unwrap().expose(), "abc");
    /// assert!(TokenSource::File("/no/such/token".into()).read().is_err());
    /// ```
    pub fn read(&self) -> std::io::Result<Secret> {
        match self {
            Self::Value(secret) => Ok(secret.clone()),
            Self::File(path) => Ok(Secret::new(std::fs::read_to_string(path)?.trim())),
        }
    }
}

/// The private key of a key-pair login: `private_key` (PEM text) or the file
/// `private_key_file`, decrypted with `private_key_file_pwd` when it is an encrypted PKCS#8 key.
pub(crate) fn load_private_key(sources: &Sources) -> Result<Secret> {
    let (key, pem) = match sources.lookup_any(&["private_key", "private_key_file", "private_key_path"]) {
        Some(("private_key", _, _)) => ("private_key", sources.get_str("private_key")?.unwrap_or_default()),
        Some((key, _, _)) => {
            let path = sources.get_str(key)?.unwrap_or_default();
            (key, read_key_file(sources, key, &expand_home(&path))?)
        }
        None => unreachable!("the key-pair method is chosen only with a key"),
    };
    let source = sources.lookup(key).map(|(_, s)| s);
    let password = sources.get_str("private_key_file_pwd")?;
    decrypt_pem(&pem, password.as_deref()).map_err(|reason| sources.error(key, source, reason))
}

/// An unencrypted PKCS#8 PEM from a PEM that may be encrypted; the error never holds key material.
///
/// ```
/// # use connections_snowflake::__doc::decrypt_pem;
/// assert!(decrypt_pem("not a key", None).unwrap_err().contains("PKCS#8"));
/// ```
pub fn decrypt_pem(pem: &str, password: Option<&str>) -> std::result::Result<Secret, String> {
    let pem = pem.trim();
    let (label, document) = SecretDocument::from_pem(pem)
        .map_err(|_| "expected a PKCS#8 private key in PEM form (`-----BEGIN PRIVATE KEY-----`)".to_owned())?;
    match label {
        "PRIVATE KEY" => Ok(Secret::new(pem)),
        "ENCRYPTED PRIVATE KEY" => {
            let Some(password) = password else {
                return Err("the private key is encrypted: set `private_key_file_pwd` to its passphrase".to_owned());
            };
            let info: EncryptedPrivateKeyInfo<'_> =
                document.decode_msg().map_err(|_| "the encrypted private key is malformed".to_owned())?;
            let decrypted = info
                .decrypt(password)
                .map_err(|_| "cannot decrypt the private key: is `private_key_file_pwd` its passphrase?".to_owned())?;
            let pem = decrypted
                .to_pem("PRIVATE KEY", LineEnding::LF)
                .map_err(|e| format!("cannot re-encode the key: {e}"))?;
            Ok(Secret::new(pem.as_str()))
        }
        "RSA PRIVATE KEY" => Err(
            "this is a PKCS#1 key (`BEGIN RSA PRIVATE KEY`); convert it to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt`"
                .to_owned(),
        ),
        other => Err(format!("expected a PKCS#8 private key, found a PEM `{other}`")),
    }
}

fn expand_home(path: &str) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => crate::files::home_dir().unwrap_or_default().join(rest),
        None => PathBuf::from(path),
    }
}

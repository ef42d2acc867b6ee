//! Content digests (`sha256:<hex>`) and the hashing that checks them.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use super::Error;
use crate::sha256::Sha256Stream;

/// A sha256 content digest, the only algorithm registries use in practice.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self::from_bytes(Sha256::digest(data).into())
    }

    fn from_bytes(sha256: [u8; 32]) -> Self {
        Self {
            hex: hex::encode(sha256),
        }
    }

    /// The lowercase hex part, which names the blob file under `blobs/sha256/`.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl FromStr for Digest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidDigest(s.to_owned());
        let hex = s.strip_prefix("sha256:").ok_or_else(invalid)?;
        let is_hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
        if hex.len() != 64 || !hex.chars().all(is_hex) {
            return Err(invalid());
        }
        Ok(Self {
            hex: hex.to_owned(),
        })
    }
}

/// Hashes bytes as they pass, so content is checked without a second read.
#[derive(Default)]
pub struct Hasher {
    sha256: Sha256Stream,
}

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        self.sha256.update(bytes);
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.sha256.len()
    }

    pub fn finish(self) -> Digest {
        Digest::from_bytes(self.sha256.finalize())
    }
}

/// Reads through to the end and returns the digest and size of everything read.
pub fn digest_reader(mut reader: impl Read) -> io::Result<(Digest, u64)> {
    let mut hasher = Hasher::default();
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            let len = hasher.len();
            return Ok((hasher.finish(), len));
        }
        hasher.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_sha256() {
        let text = format!("sha256:{}", "ab".repeat(32));
        let digest: Digest = text.parse().unwrap();
        assert_eq!(digest.to_string(), text);
    }

    #[test]
    fn rejects_other_algorithms_and_bad_hex() {
        assert!("sha512:00".parse::<Digest>().is_err());
        assert!(
            format!("sha256:{}", "AB".repeat(32))
                .parse::<Digest>()
                .is_err()
        );
    }

    #[test]
    fn digest_of_empty_input() {
        let empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(Digest::of(b"").to_string(), empty);
        assert_eq!(digest_reader(&b""[..]).unwrap().0.to_string(), empty);
    }
}

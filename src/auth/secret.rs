//! [`SensitiveString`]: the type of every secret that crosses the wire as text.

use secrecy::{ExposeSecret, SecretString};

/// A secret that travels as a JSON string: the password of the token request and the token of
/// its response. The generated types hold it (`format: password` in the spec maps to it), so
/// that they can derive `Debug` without ever showing a secret.
///
/// Zeroised when dropped. `Debug` prints `[REDACTED]`, and there is no `Display`. It serialises
/// as the plain string, because the server needs it; the serialised request body lives only as
/// long as the request.
///
/// ```
/// let password = comm100::SensitiveString::from("hunter2");
/// assert_eq!(format!("{password:?}"), "[REDACTED]");
/// assert_eq!(password.expose_secret(), "hunter2");
/// ```
#[derive(Clone)]
pub struct SensitiveString(SecretString);

impl SensitiveString {
    /// The secret itself. Every use is a place where it may leak: keep them few.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl From<String> for SensitiveString {
    fn from(value: String) -> Self {
        Self(SecretString::from(value))
    }
}

impl From<&str> for SensitiveString {
    fn from(value: &str) -> Self {
        Self(SecretString::from(value))
    }
}

/// Two secrets are equal when their texts are. The comparison shows nothing, and it looks at
/// every byte whether or not an earlier one differed, so that the time it takes tells no more
/// than the lengths. It is here so that the generated types that hold a secret (the token
/// request and response) compare with `==` like the others.
///
/// ```
/// use comm100::SensitiveString;
/// assert_eq!(SensitiveString::from("hunter2"), SensitiveString::from("hunter2"));
/// assert_ne!(SensitiveString::from("hunter2"), SensitiveString::from("hunter3"));
/// ```
impl PartialEq for SensitiveString {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (
            self.expose_secret().as_bytes(),
            other.expose_secret().as_bytes(),
        );
        // `black_box` on each step keeps the optimiser from stopping at the first difference.
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .fold(0u8, |acc, (x, y)| std::hint::black_box(acc | (x ^ y)))
                == 0
    }
}

impl Eq for SensitiveString {}

impl std::fmt::Debug for SensitiveString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl serde::Serialize for SensitiveString {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.expose_secret())
    }
}

impl<'de> serde::Deserialize<'de> for SensitiveString {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::from)
    }
}

impl schemars::JsonSchema for SensitiveString {
    fn schema_name() -> String {
        "SensitiveString".into()
    }

    fn json_schema(_: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
        schemars::schema::SchemaObject {
            instance_type: Some(schemars::schema::InstanceType::String.into()),
            format: Some("password".into()),
            ..Default::default()
        }
        .into()
    }
}

//! Request parameters from either body format the token endpoint accepts: a form, or a JSON
//! object of strings.
//!
//! RFC 6749 §3.2 says parameters must not be repeated and that a parameter sent without a
//! value is treated as omitted. Auth0-style clients send the same names as a JSON object
//! (many clients send `content-type: application/json`), so both formats parse into one
//! [`Params`], which [`Params::into_typed`] turns into an endpoint's own request type
//! (`crate::request`).

use std::fmt;

use serde::de::value::MapDeserializer;
use serde::de::{self, DeserializeOwned, Deserializer, IntoDeserializer, MapAccess, Visitor};

use crate::OAuthError;

/// Request parameters with no repeated names and no empty values.
#[derive(Default, Clone)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl fmt::Debug for Params {
    /// Names only: values include secrets and codes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.pairs.iter().map(|(k, _)| k))
            .finish()
    }
}

impl Params {
    /// Parses an `application/x-www-form-urlencoded` body.
    pub fn from_form(body: &[u8]) -> Result<Self, OAuthError> {
        let mut params = Params::default();
        for (name, value) in form_urlencoded::parse(body) {
            params.push(name.into_owned(), value.into_owned())?;
        }
        Ok(params)
    }

    /// Parses an `application/json` body: an object whose values are strings (or `null`,
    /// which counts as omitted).
    pub fn from_json(body: &[u8]) -> Result<Self, OAuthError> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let result = de
            .deserialize_map(JsonParamsVisitor)
            .and_then(|p| de.end().map(|()| p));
        result.map_err(|e| match e.classify() {
            serde_json::error::Category::Data => {
                // Our own messages (repeated or non-string parameters) are safe to pass on.
                OAuthError::invalid_request(format!("{e}"))
            }
            _ => OAuthError::invalid_request(format!("the request body is not valid JSON: {e}")),
        })
    }

    fn push(&mut self, name: String, value: String) -> Result<(), OAuthError> {
        // No stored identifier can contain NUL, and PostgreSQL refuses it in text values.
        if name.contains('\0') || value.contains('\0') {
            return Err(OAuthError::invalid_request(format!(
                "parameter {:?} contains a NUL character",
                name.replace('\0', "")
            )));
        }
        if self.pairs.iter().any(|(n, _)| *n == name) || self.empties_contain(&name) {
            return Err(OAuthError::invalid_request(format!(
                "parameter {name:?} is repeated"
            )));
        }
        if value.is_empty() {
            // Omitted, but still remembered so that `a=&a=x` counts as a repetition.
            self.pairs.push((format!("\0{name}"), String::new()));
        } else {
            self.pairs.push((name, value));
        }
        Ok(())
    }

    fn empties_contain(&self, name: &str) -> bool {
        self.pairs
            .iter()
            .any(|(n, _)| n.strip_prefix('\0') == Some(name))
    }

    /// True when `name` was sent without a value (and so counts as omitted).
    pub fn was_empty(&self, name: &str) -> bool {
        self.empties_contain(name)
    }

    /// The parameters as a form body, without those named in `leave_out` (a pushed
    /// authorization request is kept without the client's credentials, RFC 9126 §2.1), and
    /// with `client_id` set to `client_id` (a client that authenticated with HTTP Basic may
    /// not have sent it in the body).
    pub fn to_form(&self, leave_out: &[&str], client_id: &str) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.pairs {
            if !name.starts_with('\0') && name != "client_id" && !leave_out.contains(&name.as_str())
            {
                form.append_pair(name, value);
            }
        }
        form.append_pair("client_id", client_id);
        form.finish()
    }

    /// Moves the values into `T`, field by field: `T`'s fields are the parameter names it
    /// knows (`Option<String>` each); names it does not know are ignored (RFC 6749 §3.1).
    pub fn into_typed<T: DeserializeOwned>(self) -> Result<T, OAuthError> {
        let pairs = self
            .pairs
            .into_iter()
            .filter(|(name, _)| !name.starts_with('\0'))
            .map(|(name, value)| (name, Value(value)));
        T::deserialize(MapDeserializer::<_, de::value::Error>::new(pairs))
            .map_err(|e| OAuthError::invalid_request(e.to_string()))
    }

    /// The value of a parameter, if given with a value. For tests and fuzzing: endpoints
    /// read their typed request instead ([`Params::into_typed`]).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One parameter's value as serde sees it: a string that is present (an `Option` field gets
/// `Some`; serde's own string deserializer cannot fill an `Option`).
struct Value(String);

impl<'de> IntoDeserializer<'de, de::value::Error> for Value {
    type Deserializer = Value;

    fn into_deserializer(self) -> Value {
        self
    }
}

impl<'de> Deserializer<'de> for Value {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_string(self.0)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_some(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

struct JsonParamsVisitor;

impl<'de> Visitor<'de> for JsonParamsVisitor {
    type Value = Params;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object of string parameters")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Params, A::Error> {
        let mut params = Params::default();
        while let Some(name) = map.next_key::<String>()? {
            let value: serde_json::Value = map.next_value()?;
            let value = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => String::new(),
                _ => {
                    return Err(de::Error::custom(format!(
                        "parameter {name:?} must be a string"
                    )))
                }
            };
            params
                .push(name, value)
                .map_err(|e| de::Error::custom(e.description))?;
        }
        Ok(params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn form_and_json_give_the_same_parameters() {
        let f = Params::from_form(b"grant_type=client_credentials&audience=https%3A%2F%2Fa%2F")
            .unwrap();
        let j =
            Params::from_json(br#"{"grant_type":"client_credentials","audience":"https://a/"}"#)
                .unwrap();
        for p in [f, j] {
            assert_eq!(p.get("grant_type"), Some("client_credentials"));
            assert_eq!(p.get("audience"), Some("https://a/"));
        }
    }

    #[test]
    fn table_of_bad_bodies() {
        let cases: &[(&[u8], bool, &str)] = &[
            (b"a=1&a=2", false, "repeated"),
            (b"a=&a=2", false, "repeated"),
            (br#"{"a":"1","a":"2"}"#, true, "repeated"),
            (br#"{"a":1}"#, true, "must be a string"),
            (br#"["a"]"#, true, "object"),
            (br#"{"a":"1""#, true, "not valid JSON"),
            (br#"{"a":"1"} x"#, true, "not valid JSON"),
            (b"client_id=%00", false, "NUL"),
            (br#"{"client_id":"a\u0000b"}"#, true, "NUL"),
        ];
        for (body, json, needle) in cases {
            let r = if *json {
                Params::from_json(body)
            } else {
                Params::from_form(body)
            };
            let e = r.expect_err(std::str::from_utf8(body).unwrap());
            assert_eq!(e.code, ErrorCode::InvalidRequest);
            assert!(
                e.description.contains(needle),
                "{:?}: {}",
                body,
                e.description
            );
        }
    }

    #[test]
    fn empty_values_count_as_omitted() {
        let p = Params::from_form(b"scope=&audience=x").unwrap();
        assert_eq!(p.get("scope"), None);
        assert!(p.was_empty("scope"));
        let p = Params::from_json(br#"{"scope":null}"#).unwrap();
        assert_eq!(p.get("scope"), None);
    }
}

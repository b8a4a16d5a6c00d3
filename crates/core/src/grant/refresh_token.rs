//! `grant_type=refresh_token` (RFC 6749 §6), rotated on every use (RFC 9700 §4.14.2), and the
//! refresh token's format.
//!
//! # One row per sign-in
//!
//! A refresh token is `{family_id}.{generation}.{secret}.{tag}`:
//! - `family_id` names its grant family (the `sid` of its access tokens);
//! - `generation` is 1 for the token issued with the code and one more at each rotation;
//! - `secret` is 256 bits from the OS CSPRNG;
//! - `tag` is a MAC of the first three parts under a key derived from the pepper.
//!
//! The family's row holds only its current token: the generation and the keyed hash of the
//! whole token. A rotation replaces them in place with one conditional `UPDATE` (see
//! [`RefreshTokens::rotate_refresh`]), so storage grows with the live sign-ins and not with
//! how often they refresh.
//!
//! A spent token is never stored, yet it is still told apart:
//! - its tag checks out and it names a generation older than the family's current one: it was
//!   issued by this server and already spent, so the family is revoked (reuse detection);
//! - its tag does not check out: it is refused with `invalid_grant` and nothing is written, so
//!   whoever learns a family id (it is in every access token) cannot revoke the family by
//!   guessing a token;
//! - the current generation needs the keyed hash to match too: the tag alone proves only that
//!   the server made the token, and only the row knows which of the candidates of concurrent
//!   rotations won.
//!
//! Of any number of concurrent presentations of one token, on any number of nodes, exactly one
//! rotates: the `UPDATE` names the generation it expects, and the database lets one
//! transaction move it.
//!
//! A spent token presented again within the configured leeway, while its successor is still
//! current, gets that same successor again (a client that lost the first response can retry);
//! the successor is kept sealed in the row for that, and only when a leeway is set.
//!
//! Tokens of the earlier format (a bare random string, one row per rotation) keep working:
//! they are looked up by hash in the legacy table, and rotating one moves its family to
//! generation tokens.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use subtle::ConstantTimeEq;

use crate::grant::{
    decide_scope, invalid_grant, ApiDirectory, GrantError, Replayed, Secrets, UserGrant,
};
use crate::model::{Client, Family, FamilyToken, Presented, RotateOutcome, Rotation};
use crate::request::RefreshRequest;
use crate::store::{RefreshTokens, StoreError, StoreResult};
use crate::{ErrorCode, OAuthError};

/// Bytes of the tag kept in the token (128 bits).
const TAG_BYTES: usize = 16;

/// A new refresh token of `family_id` at `generation`: the token to hand out, and the keyed
/// hash the family's row keeps.
pub fn mint(secrets: &dyn Secrets, family_id: &str, generation: i64) -> (String, Vec<u8>) {
    let body = format!("{family_id}.{generation}.{}", secrets.generate());
    let tag = secrets.tag(&body);
    let token = format!("{body}.{}", URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES]));
    let hash = secrets.hash(&token);
    (token, hash)
}

/// What a presented refresh token is, judged without the database.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A generation token this server issued (its tag checks out).
    Generation {
        /// The family it names.
        family_id: &'a str,
        /// The generation it names.
        generation: i64,
    },
    /// A token of the earlier format: a bare secret, looked up by its hash.
    Legacy,
    /// Shaped like a generation token, but not made by this server: refused without a
    /// lookup.
    Forged,
}

/// Reads a presented refresh token and checks its tag (in constant time).
pub fn parse<'a>(secrets: &dyn Secrets, token: &'a str) -> Parsed<'a> {
    let Some((body, tag)) = token.rsplit_once('.') else {
        return Parsed::Legacy;
    };
    let mut parts = body.splitn(3, '.');
    let (Some(family_id), Some(generation), Some(_secret)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Parsed::Forged;
    };
    let Ok(generation) = generation.parse::<i64>() else {
        return Parsed::Forged;
    };
    let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else {
        return Parsed::Forged;
    };
    let expected = secrets.tag(body);
    if generation < 1 || tag.len() != TAG_BYTES || !bool::from(expected[..TAG_BYTES].ct_eq(&tag)) {
        return Parsed::Forged;
    }
    Parsed::Generation {
        family_id,
        generation,
    }
}

/// Rotates the presented refresh token of `client`. `leeway` is in seconds (0: any reuse
/// revokes the family).
pub async fn rotate<S>(
    store: &S,
    apis: &dyn ApiDirectory,
    secrets: &dyn Secrets,
    client: &Client,
    request: RefreshRequest,
    now: i64,
    leeway: i64,
) -> Result<UserGrant, GrantError>
where
    S: RefreshTokens + ?Sized,
{
    let token_hash = secrets.hash(&request.refresh_token);
    let (family, presented, generation) = match parse(secrets, &request.refresh_token) {
        Parsed::Forged => return Err(invalid_grant("the refresh token is invalid")),
        Parsed::Generation {
            family_id,
            generation,
        } => {
            let Some(family) = store.family(family_id).await? else {
                return Err(invalid_grant("the refresh token is invalid"));
            };
            let presented = Presented::Generation {
                generation,
                token_hash,
            };
            (family, presented, generation + 1)
        }
        Parsed::Legacy => {
            let Some((_, family)) = store.refresh_token(&token_hash).await? else {
                return Err(invalid_grant("the refresh token is invalid"));
            };
            (family, Presented::Legacy { token_hash }, 1)
        }
    };
    if family.client_id != client.id {
        // Not this client's token: refuse without spending it.
        return Err(invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if let Some(bound) = &family.dpop_jkt {
        // RFC 9449 §5: checked before the rotation, so a thief's attempt spends nothing.
        if request.dpop_jkt.as_deref() != Some(bound.as_str()) {
            return Err(OAuthError::new(
                ErrorCode::InvalidDpopProof,
                "the refresh token is bound to a DPoP key: send a proof made with that key",
            )
            .into());
        }
    }
    // RFC 6749 §6: a narrower scope is allowed, a wider one is not.
    let scope = decide_scope(request.scope.as_deref(), &family.scope)?;
    let Some(api) = apis.api_by_id(&family.api_id).await? else {
        return Err(invalid_grant("the API this grant was for no longer exists"));
    };
    let (successor, successor_hash) = mint(secrets, &family.id, generation);
    let rotation = Rotation {
        family_id: family.id.clone(),
        presented,
        successor: FamilyToken {
            generation,
            token_hash: successor_hash,
            issued_at: now,
            expires_at: now + api.refresh_token_lifetime,
        },
        successor_sealed: (leeway > 0).then(|| secrets.seal(successor.as_bytes())),
        now,
        leeway,
    };
    let refresh_token = match store.rotate_refresh(rotation).await? {
        RotateOutcome::Rotated => successor,
        RotateOutcome::Retried(sealed) => secrets
            .open(&sealed)
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| StoreError::Other("the sealed successor could not be opened".into()))?,
        RotateOutcome::Reused => {
            return Err(GrantError::Replayed {
                what: Replayed::RefreshToken,
                family_id: family.id,
                error: OAuthError::new(
                    ErrorCode::InvalidGrant,
                    "the refresh token was already used; the authorization is revoked",
                ),
            })
        }
        RotateOutcome::Invalid => {
            return Err(invalid_grant("the refresh token is expired or revoked"))
        }
    };
    Ok(UserGrant {
        family,
        api,
        scope,
        refresh_token: Some(refresh_token),
    })
}

/// A refresh token found without spending it (for revocation and introspection).
#[derive(Debug)]
pub struct Described {
    /// Its family.
    pub family: Family,
    /// When it was issued.
    pub issued_at: i64,
    /// Its expiry.
    pub expires_at: i64,
    /// True when it would rotate now: the family's current token, unexpired, of a family
    /// that is not revoked.
    pub live: bool,
}

/// Looks a refresh token up: `None` when this server never issued it (or its family is gone).
/// A spent token of a live family is found, not live.
pub async fn describe<S>(
    store: &S,
    secrets: &dyn Secrets,
    token: &str,
    now: i64,
) -> StoreResult<Option<Described>>
where
    S: RefreshTokens + ?Sized,
{
    match parse(secrets, token) {
        Parsed::Forged => Ok(None),
        Parsed::Generation {
            family_id,
            generation,
        } => {
            let Some(family) = store.family(family_id).await? else {
                return Ok(None);
            };
            let Some(current) = family.token.clone() else {
                return Ok(None);
            };
            let is_current = current.generation == generation
                && bool::from(current.token_hash.ct_eq(&secrets.hash(token)));
            if !is_current && generation >= current.generation {
                // A candidate of a rotation that lost, never handed out.
                return Ok(None);
            }
            let live = is_current && current.expires_at > now && family.revoked_at.is_none();
            Ok(Some(Described {
                live,
                issued_at: current.issued_at,
                expires_at: current.expires_at,
                family,
            }))
        }
        Parsed::Legacy => {
            let Some((row, family)) = store.refresh_token(&secrets.hash(token)).await? else {
                return Ok(None);
            };
            let live = row.used_at.is_none() && row.expires_at > now && family.revoked_at.is_none();
            Ok(Some(Described {
                live,
                issued_at: row.created_at,
                expires_at: row.expires_at,
                family,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic stand-ins: the "MAC" is SHA-256 of the message (keyless, which is
    /// enough to see that every part of the token is covered).
    struct Fake;

    impl Secrets for Fake {
        fn hash(&self, secret: &str) -> Vec<u8> {
            secret.as_bytes().to_vec()
        }
        fn generate(&self) -> String {
            "S".repeat(43)
        }
        fn tag(&self, message: &str) -> Vec<u8> {
            use sha2::Digest;
            sha2::Sha256::digest(message.as_bytes()).to_vec()
        }
        fn id(&self, prefix: &str) -> String {
            format!("{prefix}_x")
        }
        fn seal(&self, plain: &[u8]) -> Vec<u8> {
            plain.to_vec()
        }
        fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
            Some(sealed.to_vec())
        }
    }

    #[test]
    fn a_minted_token_parses_back_to_its_family_and_generation() {
        let (token, hash) = mint(&Fake, "fam_abc-_9", 7);
        assert_eq!(hash, token.as_bytes());
        assert_eq!(
            parse(&Fake, &token),
            Parsed::Generation {
                family_id: "fam_abc-_9",
                generation: 7
            }
        );
    }

    #[test]
    fn a_token_with_a_changed_part_is_forged() {
        let (token, _) = mint(&Fake, "fam_abc", 3);
        let other_family = token.replacen("fam_abc", "fam_abd", 1);
        let other_generation = token.replacen(".3.", ".2.", 1);
        let other_secret = token.replacen("SSS", "SST", 1);
        for t in [other_family, other_generation, other_secret] {
            assert_eq!(parse(&Fake, &t), Parsed::Forged, "{t}");
        }
        assert_eq!(parse(&Fake, "fam_abc.0.x.AAAA"), Parsed::Forged);
        assert_eq!(parse(&Fake, "a.b"), Parsed::Forged);
        assert_eq!(parse(&Fake, "fam_abc.1.x.!!"), Parsed::Forged);
    }

    #[test]
    fn a_bare_secret_is_a_legacy_token() {
        assert_eq!(parse(&Fake, &"k".repeat(43)), Parsed::Legacy);
    }
}

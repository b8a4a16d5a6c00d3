//! What the pages for people rest on: organizations' entitlements (what their own developers
//! may grant their applications in the developer portal), the branding of every page, and a
//! user taking back an application's access.

use calyx_core::audit::kind;
use calyx_core::model::{Client, Entitlement, GrantType};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{invalid, not_found, parse_scopes, About, ManageError, ManageResult, Manager};
use super::{ScopeList, ADMIN_AUDIENCE, OPERATOR_ORG_ID};

/// The `meta` key the branding is stored under, as JSON.
const BRANDING_KEY: &str = "branding";

/// An organization's entitlement on one API.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EntitlementView {
    /// The API's id.
    pub api_id: String,
    /// The API's audience.
    pub audience: String,
    /// The API's name.
    pub api_name: String,
    /// The most an application of the organization may be granted.
    pub scopes: Vec<String>,
}

/// The name, logo and accent colour on every page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Branding {
    /// The provider's name, in titles and headers.
    pub name: String,
    /// An image shown beside the name (https, or a path on this server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
    /// Accent colour of buttons, links and focus rings: `#rrggbb`, at least 4.5:1 against
    /// white (WCAG 1.4.3), so white text on it and it on white both stay readable.
    pub color: String,
}

impl Default for Branding {
    fn default() -> Branding {
        Branding {
            name: "Calyx".into(),
            logo_url: None,
            color: "#1d4ed8".into(),
        }
    }
}

/// Changes to the branding; absent fields stay as they are, an empty `logo_url` removes it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BrandingPatch {
    /// The provider's name.
    pub name: Option<String>,
    /// Logo image URL; empty removes it.
    pub logo_url: Option<String>,
    /// Accent colour, `#rrggbb`.
    pub color: Option<String>,
}

/// WCAG 2.x relative luminance of an sRGB colour `#rrggbb`.
fn luminance(hex: &str) -> Option<f64> {
    let hex = hex.strip_prefix('#')?;
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let channel = |i: usize| {
        let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).ok()?) / 255.0;
        Some(if c <= 0.040_45 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        })
    };
    Some(0.2126 * channel(0)? + 0.7152 * channel(2)? + 0.0722 * channel(4)?)
}

/// The contrast ratio of `hex` against white (1 to 21).
pub fn contrast_with_white(hex: &str) -> Option<f64> {
    luminance(hex).map(|l| 1.05 / (l + 0.05))
}

fn check_branding(b: &Branding) -> ManageResult<()> {
    let name = b.name.trim();
    if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
        return invalid("the brand name must be 1 to 60 characters");
    }
    match contrast_with_white(&b.color) {
        None => return invalid("the colour must be #rrggbb, for example #1d4ed8"),
        Some(r) if r < 4.5 => {
            return invalid(format!(
                "the colour {} has a contrast of {r:.2}:1 against white; at least 4.5:1 is needed \
                 for readable buttons and links (WCAG 1.4.3): choose a darker shade",
                b.color
            ))
        }
        Some(_) => {}
    }
    if let Some(logo) = &b.logo_url {
        let local = logo.starts_with('/') && !logo.starts_with("//");
        let ok = local
            || url::Url::parse(logo).is_ok_and(|u| {
                u.scheme() == "https"
                    || (u.scheme() == "http"
                        && matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")))
            });
        if !ok || logo.len() > 2000 || logo.chars().any(|c| c.is_control() || c == '"') {
            return invalid("the logo URL must be https (or a path on this server)");
        }
    }
    Ok(())
}

impl Manager {
    /// An organization's entitlements.
    pub async fn entitlements(&self, org_id: &str) -> ManageResult<Vec<EntitlementView>> {
        self.org(org_id).await?;
        let mut out = Vec::new();
        for e in self.store.entitlements(org_id).await? {
            if let Some(api) = self.store.api(&e.api_id).await? {
                out.push(EntitlementView {
                    api_id: api.id,
                    audience: api.audience,
                    api_name: api.name,
                    scopes: e.scopes.iter().map(str::to_owned).collect(),
                });
            }
        }
        Ok(out)
    }

    /// Lets an organization's developers grant their applications at most `scopes` of an API
    /// (by id or audience), replacing any earlier entitlement on it. Grants already made stay
    /// as they are; operators are not bound by entitlements.
    pub async fn set_entitlement(
        &self,
        org_id: &str,
        api: &str,
        scopes: &ScopeList,
    ) -> ManageResult<EntitlementView> {
        let org = self.org(org_id).await?;
        if org.id == OPERATOR_ORG_ID {
            return invalid("the operators' organization needs no entitlements");
        }
        let api = self.api(api).await?;
        if api.audience == ADMIN_AUDIENCE {
            return invalid(format!(
                "no organization can be entitled to {ADMIN_AUDIENCE}"
            ));
        }
        let set = parse_scopes("scopes", &scopes.joined())?;
        let unknown: Vec<&str> = set.iter().filter(|s| !api.scopes.contains(s)).collect();
        if !unknown.is_empty() {
            return invalid(format!(
                "the API {} does not define the scopes: {}",
                api.audience,
                unknown.join(" ")
            ));
        }
        if let Some(r) = set
            .iter()
            .find(|s| calyx_core::scope::RESERVED_SCOPES.contains(s))
        {
            return invalid(format!(
                "{r} is for organization tokens and is granted by operators only"
            ));
        }
        self.store
            .set_entitlement(&Entitlement {
                org_id: org.id.clone(),
                api_id: api.id.clone(),
                scopes: set.clone(),
            })
            .await?;
        self.record(
            kind::ENTITLEMENT_SET,
            About {
                org_id: Some(org.id),
                target: Some(api.id.clone()),
                ..About::default()
            },
            json!({"audience": api.audience, "scopes": set.to_string()}),
        )
        .await?;
        Ok(EntitlementView {
            api_id: api.id,
            audience: api.audience,
            api_name: api.name,
            scopes: set.iter().map(str::to_owned).collect(),
        })
    }

    /// Removes an organization's entitlement on an API (by id or audience).
    pub async fn delete_entitlement(&self, org_id: &str, api: &str) -> ManageResult<()> {
        self.org(org_id).await?;
        let api = self.api(api).await?;
        if !self.store.delete_entitlement(org_id, &api.id).await? {
            return not_found(format!(
                "organization {org_id} has no entitlement on {}",
                api.audience
            ));
        }
        self.record(
            kind::ENTITLEMENT_DELETED,
            About {
                org_id: Some(org_id.to_owned()),
                target: Some(api.id),
                ..About::default()
            },
            json!({"audience": api.audience}),
        )
        .await?;
        Ok(())
    }

    /// A client of `org_id`, or not found: an organization admin names only its own.
    pub async fn org_client(&self, org_id: &str, client_id: &str) -> ManageResult<Client> {
        match self.store.client(client_id).await? {
            Some(c) if c.org_id == org_id => Ok(c),
            _ => not_found(format!("no application with client id {client_id}")),
        }
    }

    /// Sets what an organization's application may obtain from one API, within the
    /// organization's entitlement: creates, changes or (with no scopes) removes its grant.
    /// The first grant of a client is its default audience.
    pub async fn set_app_grant(
        &self,
        org_id: &str,
        client_id: &str,
        api_id: &str,
        scopes: &str,
    ) -> ManageResult<()> {
        let client = self.org_client(org_id, client_id).await?;
        let wanted = parse_scopes("scopes", scopes)?;
        let entitled = self
            .store
            .entitlements(org_id)
            .await?
            .into_iter()
            .find(|e| e.api_id == api_id)
            .ok_or_else(|| {
                ManageError::InvalidScope("your organization is not entitled to this API".into())
            })?;
        let beyond: Vec<&str> = wanted.difference(&entitled.scopes).collect();
        if !beyond.is_empty() {
            return Err(ManageError::InvalidScope(format!(
                "your organization is not entitled to: {}",
                beyond.join(" ")
            )));
        }
        let grants = self.store.grants_for_client(&client.id).await?;
        let existing = grants.iter().find(|g| g.api_id == api_id);
        match existing {
            None if wanted.is_empty() => Ok(()),
            None => {
                let first = grants.is_empty();
                self.create_grant(&client.id, api_id, &wanted.to_string(), first)
                    .await?;
                Ok(())
            }
            Some(_) if wanted.is_empty() => self.delete_grant(&client.id, api_id).await,
            Some(_) => {
                self.update_grant(
                    &client.id,
                    api_id,
                    super::GrantPatch {
                        scopes: Some(ScopeList::Words(wanted.to_string())),
                        default: None,
                    },
                )
                .await?;
                Ok(())
            }
        }
    }

    /// The branding of the pages (the default until one is set).
    pub async fn branding(&self) -> ManageResult<Branding> {
        Ok(match self.store.meta_get(BRANDING_KEY).await? {
            Some(json) => serde_json::from_str(&json).unwrap_or_default(),
            None => Branding::default(),
        })
    }

    /// Changes the branding; every node shows it within its reload interval.
    pub async fn update_branding(&self, patch: BrandingPatch) -> ManageResult<Branding> {
        let mut b = self.branding().await?;
        let mut changed = serde_json::Map::new();
        if let Some(name) = patch.name {
            b.name = name.trim().to_owned();
            changed.insert("name".into(), json!(b.name));
        }
        if let Some(logo) = patch.logo_url {
            b.logo_url = Some(logo.trim().to_owned()).filter(|l| !l.is_empty());
            changed.insert("logo_url".into(), json!(b.logo_url));
        }
        if let Some(color) = patch.color {
            b.color = color.trim().to_ascii_lowercase();
            changed.insert("color".into(), json!(b.color));
        }
        check_branding(&b)?;
        let json = serde_json::to_string(&b).map_err(anyhow::Error::new)?;
        self.store.meta_set(BRANDING_KEY, &json).await?;
        self.record(kind::BRANDING_UPDATED, About::default(), changed.into())
            .await?;
        Ok(b)
    }

    /// A user takes back an application's access: the remembered consent goes, and every
    /// token chain of that user with that application is revoked.
    pub async fn forget_consent(&self, user_id: &str, client_id: &str) -> ManageResult<()> {
        let user = self.user(user_id).await?;
        if !self
            .store
            .forget_consent(user_id, client_id, self.clock.now())
            .await?
        {
            return not_found("that application has no access to remove");
        }
        self.record(
            kind::CONSENT_REVOKED,
            About {
                org_id: Some(user.org_id),
                client_id: Some(client_id.to_owned()),
                user_id: Some(user.id),
                target: Some(client_id.to_owned()),
            },
            json!({}),
        )
        .await?;
        Ok(())
    }
}

/// The grant types an organization admin may register an application for.
pub const PORTAL_GRANT_TYPES: &[GrantType] = &[
    GrantType::ClientCredentials,
    GrantType::AuthorizationCode,
    GrantType::RefreshToken,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contrast_follows_wcag() {
        // White on black is 21:1, white on white 1:1; the default accent passes 4.5:1.
        assert!((contrast_with_white("#000000").unwrap() - 21.0).abs() < 0.01);
        assert!((contrast_with_white("#ffffff").unwrap() - 1.0).abs() < 0.01);
        assert!(contrast_with_white(&Branding::default().color).unwrap() >= 4.5);
        // #767676 is the lightest grey with 4.5:1 on white; #777777 falls just short.
        assert!(contrast_with_white("#767676").unwrap() >= 4.5);
        assert!(contrast_with_white("#777777").unwrap() < 4.5);
        assert_eq!(contrast_with_white("blue"), None);
        assert_eq!(contrast_with_white("#12345g"), None);
    }

    #[test]
    fn branding_rules() {
        let ok = Branding::default();
        assert!(check_branding(&ok).is_ok());
        for bad in [
            Branding {
                color: "#ffcc00".into(),
                ..ok.clone()
            },
            Branding {
                name: " ".into(),
                ..ok.clone()
            },
            Branding {
                logo_url: Some("javascript:alert(1)".into()),
                ..ok.clone()
            },
            Branding {
                logo_url: Some("http://evil.example/x.png".into()),
                ..ok.clone()
            },
            Branding {
                logo_url: Some("//evil.example/x.png".into()),
                ..ok.clone()
            },
        ] {
            assert!(check_branding(&bad).is_err(), "{bad:?}");
        }
        assert!(check_branding(&Branding {
            logo_url: Some("https://cdn.example/logo.svg".into()),
            ..ok
        })
        .is_ok());
    }
}

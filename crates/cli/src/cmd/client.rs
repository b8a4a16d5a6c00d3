//! `calyx client create | list | show | update | delete | disable | enable | rotate-secret |
//! revoke-tokens`. A secret is printed only by `create` and `rotate-secret`.

use anyhow::Context;
use calyx_core::model::{ClientPolicy, ClientType, GrantType, Quota};
use calyx_server::manage::views::ClientView;
use calyx_server::manage::{parse_auth_method, ClientPatch, Manager, NewClient};
use serde_json::json;

use crate::output::{print, show};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Register a client; prints its secret once.
    Create(CreateArgs),
    /// Every client, or an organization's.
    List {
        /// Only this organization's clients.
        #[arg(long)]
        org: Option<String>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// One client (never its secret).
    Show {
        /// The client id.
        id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Change a client's registration (not its type, organization or secret).
    Update(UpdateArgs),
    /// Delete a client: its grants go, and every sign-in of it is revoked.
    Delete {
        /// The client id.
        id: String,
    },
    /// Stop a client: it can no longer authenticate, and its tokens are refused here.
    Disable {
        /// The client id.
        id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Let a disabled client authenticate again.
    Enable {
        /// The client id.
        id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Give a client a new secret; prints it once.
    RotateSecret {
        /// The client id.
        client_id: String,
        /// Seconds the old secret keeps working (0 = it stops now).
        #[arg(long, default_value_t = 0)]
        grace_seconds: i64,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Revoke every sign-in of a client: its refresh tokens stop working at once and its
    /// access tokens stop introspecting as active.
    RevokeTokens {
        /// The client id.
        id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Owning organization id.
    #[arg(long)]
    org: String,
    /// Display name, shown on the consent page.
    #[arg(long)]
    name: String,
    /// Choose the client id instead of generating one.
    #[arg(long)]
    client_id: Option<String>,
    /// confidential (has a secret) or public (PKCE, no secret).
    #[arg(long = "type", default_value = "confidential")]
    client_type: ClientType,
    /// Allowed grant (repeatable): client_credentials, authorization_code, refresh_token.
    #[arg(long = "grant-type", value_parser = parse_grant)]
    grant_types: Vec<GrantType>,
    /// Registered redirect URI (repeatable), matched exactly.
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// Description.
    #[arg(long)]
    description: Option<String>,
    /// Website, linked from the consent page.
    #[arg(long)]
    website_uri: Option<String>,
    /// Privacy policy, linked from the consent page.
    #[arg(long)]
    privacy_policy_uri: Option<String>,
    /// Terms of service, linked from the consent page.
    #[arg(long)]
    tos_uri: Option<String>,
    #[command(flatten)]
    security: SecurityArgs,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// How the client authenticates and what it must use; the same flags for create and update.
#[derive(Debug, clap::Args)]
pub struct SecurityArgs {
    /// client_secret_basic (a confidential client's default), private_key_jwt,
    /// tls_client_auth or self_signed_tls_client_auth.
    #[arg(long)]
    token_endpoint_auth_method: Option<String>,
    /// A file holding the client's public keys as a JWK Set.
    #[arg(long, conflicts_with = "jwks_uri")]
    jwks: Option<std::path::PathBuf>,
    /// Where the client publishes its JWK Set (fetched and cached by the server).
    #[arg(long)]
    jwks_uri: Option<String>,
    /// The subject DN of the client's TLS certificate (tls_client_auth), as RFC 4514 writes it.
    #[arg(long)]
    tls_client_auth_subject_dn: Option<String>,
    /// Every token request must carry a DPoP proof (true or false).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    require_dpop: Option<bool>,
    /// Authorization requests must be pushed first with PAR (true or false).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    require_par: Option<bool>,
    /// Tokens per hour ("none" removes the limit).
    #[arg(long, value_parser = parse_quota)]
    tokens_per_hour: Option<Limit>,
    /// Tokens per day ("none" removes the limit).
    #[arg(long, value_parser = parse_quota)]
    tokens_per_day: Option<Limit>,
}

/// A quota flag's value: a number of tokens, or `none` (no limit). A type of its own, as clap
/// reads `Option<Option<_>>` as a flag whose value may be left out.
#[derive(Debug, Clone, Copy)]
pub struct Limit(pub Option<i64>);

/// A quota: a whole number, or `none`.
pub fn parse_quota(s: &str) -> Result<Limit, String> {
    match s {
        "none" => Ok(Limit(None)),
        n => n
            .parse()
            .map(|n| Limit(Some(n)))
            .map_err(|_| format!("{s:?} is not a whole number or none")),
    }
}

impl SecurityArgs {
    fn jwks(&self) -> anyhow::Result<Option<serde_json::Value>> {
        let Some(path) = &self.jwks else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the JWK Set from {}", path.display()))?;
        let jwks = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        Ok(Some(jwks))
    }

    fn policy(&self) -> anyhow::Result<ClientPolicy> {
        Ok(ClientPolicy {
            auth: parse_auth_method(self.token_endpoint_auth_method.as_deref())?,
            jwks: self.jwks()?,
            jwks_uri: self.jwks_uri.clone(),
            tls_subject_dn: self.tls_client_auth_subject_dn.clone(),
            require_dpop: self.require_dpop.unwrap_or(false),
            require_par: self.require_par.unwrap_or(false),
        })
    }

    fn quota(&self) -> Quota {
        Quota {
            per_hour: self.tokens_per_hour.and_then(|l| l.0),
            per_day: self.tokens_per_day.and_then(|l| l.0),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// The client id.
    id: String,
    /// New display name.
    #[arg(long)]
    name: Option<String>,
    /// Allowed grant (repeatable; replaces the list): client_credentials,
    /// authorization_code, refresh_token.
    #[arg(long = "grant-type", value_parser = parse_grant)]
    grant_types: Vec<GrantType>,
    /// Registered redirect URI (repeatable; replaces the list).
    #[arg(long = "redirect-uri", conflicts_with = "clear_redirect_uris")]
    redirect_uris: Vec<String>,
    /// Remove every redirect URI.
    #[arg(long)]
    clear_redirect_uris: bool,
    /// Description ("" removes it).
    #[arg(long)]
    description: Option<String>,
    /// Website ("" removes it).
    #[arg(long)]
    website_uri: Option<String>,
    /// Privacy policy ("" removes it).
    #[arg(long)]
    privacy_policy_uri: Option<String>,
    /// Terms of service ("" removes it).
    #[arg(long)]
    tos_uri: Option<String>,
    /// Disable (true) or enable (false), as `disable` and `enable` do.
    #[arg(long)]
    disabled: Option<bool>,
    #[command(flatten)]
    security: SecurityArgs,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

fn parse_grant(s: &str) -> Result<GrantType, String> {
    GrantType::parse(s).ok_or_else(|| format!("unknown grant type {s:?}"))
}

pub async fn run(m: &Manager, c: Command) -> anyhow::Result<()> {
    match c {
        Command::Create(a) => {
            let (client, secret) = m
                .create_client(NewClient {
                    org_id: a.org,
                    client_id: a.client_id,
                    name: a.name,
                    client_type: a.client_type,
                    grant_types: a.grant_types,
                    redirect_uris: a.redirect_uris,
                    description: a.description,
                    website_uri: a.website_uri,
                    privacy_policy_uri: a.privacy_policy_uri,
                    tos_uri: a.tos_uri,
                    policy: a.security.policy()?,
                    quota: a.security.quota(),
                })
                .await?;
            let mut lines = vec![("client_id", client.id.clone())];
            if let Some(s) = &secret {
                lines.push(("client_secret", s.clone()));
                lines.push(("", "(the secret is shown only this once)".into()));
            }
            print(
                a.json,
                json!({"client_id": client.id, "client_secret": secret}),
                &lines,
            );
        }
        Command::List { org, json } => {
            let org = org.as_deref();
            super::list(
                json,
                &["ID", "ORG", "TYPE", "DISABLED", "NAME"],
                |c: &ClientView| {
                    vec![
                        c.id.clone(),
                        c.org_id.clone(),
                        c.client_type.clone(),
                        c.disabled.to_string(),
                        c.name.clone(),
                    ]
                },
                |after, limit| async move { m.list_clients(org, after.as_deref(), limit).await },
            )
            .await?;
        }
        Command::Show { id, json } => show(json, &ClientView::from(m.client(&id).await?))?,
        Command::Update(a) => {
            let redirect_uris = if a.clear_redirect_uris {
                Some(Vec::new())
            } else {
                (!a.redirect_uris.is_empty()).then_some(a.redirect_uris)
            };
            let grant_types = (!a.grant_types.is_empty()).then(|| {
                a.grant_types
                    .iter()
                    .map(|g| g.as_str().to_owned())
                    .collect()
            });
            let patch = ClientPatch {
                name: a.name,
                description: a.description,
                website_uri: a.website_uri,
                privacy_policy_uri: a.privacy_policy_uri,
                tos_uri: a.tos_uri,
                redirect_uris,
                grant_types,
                disabled: a.disabled,
                token_endpoint_auth_method: a.security.token_endpoint_auth_method.clone(),
                jwks: a.security.jwks()?.map(Some),
                jwks_uri: a.security.jwks_uri.clone(),
                tls_client_auth_subject_dn: a.security.tls_client_auth_subject_dn.clone(),
                require_dpop: a.security.require_dpop,
                require_par: a.security.require_par,
                tokens_per_hour: a.security.tokens_per_hour.map(|l| l.0),
                tokens_per_day: a.security.tokens_per_day.map(|l| l.0),
            };
            let client = m.update_client(&a.id, patch).await?;
            show(a.json, &ClientView::from(client))?;
        }
        Command::Delete { id } => {
            m.delete_client(&id).await?;
            eprintln!("deleted client {id}");
        }
        Command::Disable { id, json } => {
            show(
                json,
                &ClientView::from(m.set_client_disabled(&id, true).await?),
            )?;
        }
        Command::Enable { id, json } => {
            show(
                json,
                &ClientView::from(m.set_client_disabled(&id, false).await?),
            )?;
        }
        Command::RotateSecret {
            client_id,
            grace_seconds,
            json,
        } => {
            let (_, secret) = m.rotate_secret(&client_id, grace_seconds).await?;
            print(
                json,
                json!({"client_id": client_id, "client_secret": secret}),
                &[
                    ("client_id", client_id.clone()),
                    ("client_secret", secret.clone()),
                    ("", "(the secret is shown only this once)".into()),
                ],
            );
        }
        Command::RevokeTokens { id, json } => {
            let n = m.revoke_client_tokens(&id).await?;
            print(
                json,
                json!({"client_id": id, "families_revoked": n}),
                &[
                    ("client_id", id.clone()),
                    ("families_revoked", n.to_string()),
                ],
            );
        }
    }
    Ok(())
}

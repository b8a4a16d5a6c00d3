//! `grant_type=client_credentials` (RFC 6749 §4.4): a machine token for the requested (or
//! default) audience, with the asked scopes if the client's grant covers them.
//!
//! This is the hot path, so the decision is synchronous and reads nothing: the server has the
//! client's grants in memory already.

use crate::grant::{decide_scope, grant_for, target_audience};
use crate::model::ClientGrant;
use crate::request::ClientCredentialsRequest;
use crate::{OAuthError, ScopeSet};

/// What to issue: a token for `grant`'s API with `scope`.
#[derive(Debug)]
pub struct MachineGrant<'a> {
    /// The client's grant for the API asked for.
    pub grant: &'a ClientGrant,
    /// The scopes to grant.
    pub scope: ScopeSet,
}

/// Decides a client-credentials request against the client's grants.
pub fn decide<'a>(
    request: &ClientCredentialsRequest,
    grants: &'a [ClientGrant],
) -> Result<MachineGrant<'a>, OAuthError> {
    let audience = target_audience(&request.target, grants)?;
    let grant = grant_for(grants, audience)?;
    let scope = decide_scope(request.scope.as_deref(), &grant.scopes)?;
    Ok(MachineGrant { grant, scope })
}

//! `/developers/`: the developer portal.

use crate::state::AppState;

/// The portal's routes.
pub(crate) fn routes() -> Vec<(&'static str, axum::routing::MethodRouter<AppState>)> {
    Vec::new()
}

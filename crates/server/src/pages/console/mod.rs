//! `/console/`: the operator console.

use crate::state::AppState;

/// The console's routes.
pub(crate) fn routes() -> Vec<(&'static str, axum::routing::MethodRouter<AppState>)> {
    Vec::new()
}

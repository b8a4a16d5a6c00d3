//! The tower layer and the axum extractor.

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, Method, Request, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use tower::{Layer, Service};

use crate::{Guard, GuardError, Refusal, Verified};

/// Rejects requests without a valid token (and without the required scopes), and puts the
/// [`Verified`] token in the request extensions for handlers ([`Authenticated`]). A token is
/// valid with `Authorization: Bearer` when it is bound to no key, and with
/// `Authorization: DPoP` and a proof of its key when it is; a token bound to a client
/// certificate also needs the request's [`ClientCertificate`](crate::ClientCertificate) (put
/// in its extensions before this layer) to be that certificate ([`Guard::authorize`]).
#[derive(Clone, Debug)]
pub struct GuardLayer {
    guard: Guard,
    scopes: Arc<[String]>,
}

impl GuardLayer {
    /// Any valid token passes.
    pub fn new(guard: Guard) -> Self {
        GuardLayer {
            guard,
            scopes: Arc::from(Vec::new()),
        }
    }

    /// Tokens must also hold every one of `scopes` (403 `insufficient_scope` otherwise).
    pub fn require_scopes(mut self, scopes: &[&str]) -> Self {
        self.scopes = scopes
            .iter()
            .map(|s| (*s).to_owned())
            .collect::<Vec<_>>()
            .into();
        self
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = GuardService<S>;
    fn layer(&self, inner: S) -> GuardService<S> {
        GuardService {
            inner,
            guard: self.guard.clone(),
            scopes: self.scopes.clone(),
        }
    }
}

/// The service [`GuardLayer`] wraps around a handler.
#[derive(Clone, Debug)]
pub struct GuardService<S> {
    inner: S,
    guard: Guard,
    scopes: Arc<[String]>,
}

impl<S> Service<Request<Body>> for GuardService<S>
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        // The clone that was polled ready handles this request (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (guard, scopes) = (self.guard.clone(), self.scopes.clone());
        Box::pin(async move {
            // The parts are borrowed one by one: the body is not `Sync`, so a borrow of the
            // whole request would make this future not `Send`.
            let (method, uri, headers) = (req.method(), req.uri(), req.headers());
            match authorize(&guard, &scopes, method, uri, headers, req.extensions()).await {
                Ok(v) => {
                    req.extensions_mut().insert(v);
                    inner.call(req).await
                }
                Err(e) => Ok(e.into_response()),
            }
        })
    }
}

async fn authorize(
    guard: &Guard,
    scopes: &[String],
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    extensions: &Extensions,
) -> Result<Arc<Verified>, Refusal> {
    let verified = guard
        .authorize_request(method, uri, headers, extensions)
        .await?;
    if let Some(missing) = scopes.iter().find(|s| !verified.has_scope(s)) {
        return Err(Refusal {
            scheme: verified.scheme(),
            error: GuardError::InsufficientScope(missing.clone()),
        });
    }
    Ok(verified)
}

/// The verified token of a request that passed a [`GuardLayer`]; [`Verified::jkt`] tells a
/// DPoP-bound token (and so a caller that proved possession of its key) from a bearer one, and
/// [`Verified::x5t_s256`] a certificate-bound one (a caller that presented its certificate).
#[derive(Debug, Clone)]
pub struct Authenticated(pub Arc<Verified>);

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = GuardError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // Without the layer in front there is nothing to read: refuse rather than let the
        // handler run unauthenticated.
        parts
            .extensions
            .get::<Arc<Verified>>()
            .cloned()
            .map(Authenticated)
            .ok_or(GuardError::Missing)
    }
}

//! One ACME order: the account (created once, then read from storage),
//! the order for all the server's hosts, each authorization's challenge
//! answered and announced, the wait for validation, the CSR (a new key
//! each time) and the certificate. Every step is logged.

use std::sync::Arc;
use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use rustls::sign::CertifiedKey;

use super::storage::Storage;
use super::State;
use crate::config::snapshot::{AcmeChallenge, AcmeSettings};

/// How long the CA may take to validate, and then to issue.
const VALIDATION_WAIT: Duration = Duration::from_secs(90);

#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("{step}: {err}")]
    Acme {
        step: &'static str,
        err: instant_acme::Error,
    },
    #[error("storage: {0}")]
    Storage(#[from] std::io::Error),
    #[error("{0}")]
    Refused(String),
}

fn at(step: &'static str) -> impl FnOnce(instant_acme::Error) -> OrderError {
    move |err| OrderError::Acme { step, err }
}

/// A certificate chain and its key, PEM.
pub struct Issued {
    pub chain: String,
    pub key: String,
}

/// Orders a certificate for `hosts`, answering the challenges through
/// `state` while the order is validated.
pub async fn obtain(
    settings: &AcmeSettings,
    server: &str,
    hosts: &[String],
    storage: &Storage,
    state: &State,
) -> Result<Issued, OrderError> {
    let account = account(settings, storage).await?;
    let identifiers: Vec<Identifier> = hosts.iter().map(|h| Identifier::Dns(h.clone())).collect();
    let mut order = match account.new_order(&NewOrder::new(&identifiers)).await {
        Ok(o) => o,
        Err(e) => {
            // An account the CA no longer knows (a reset test CA, a
            // deactivated account) would fail every order: the next
            // attempt creates a new one.
            if matches!(&e, instant_acme::Error::Api(p) if p.r#type.as_deref().is_some_and(|t| t.ends_with(":accountDoesNotExist")))
            {
                tracing::warn!(
                    server,
                    "the CA does not know the stored ACME account; a new one will be created"
                );
                storage.forget_account(&settings.directory)?;
            }
            return Err(at("new order")(e));
        }
    };
    tracing::info!(server, url = order.url(), hosts = ?hosts, "ACME order created");
    // Challenge answers are withdrawn however the order ends.
    let answers = answer_challenges(&mut order, settings, server, state).await?;
    let retry = RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .timeout(VALIDATION_WAIT);
    let status = order.poll_ready(&retry).await.map_err(at("validation"))?;
    drop(answers);
    if status != OrderStatus::Ready {
        let why = order
            .state()
            .error
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_else(|| format!("order is {status:?}"));
        return Err(OrderError::Refused(format!("validation failed: {why}")));
    }
    tracing::info!(server, "ACME order validated; finalizing");
    let key = order.finalize().await.map_err(at("finalize"))?;
    let chain = order
        .poll_certificate(&retry)
        .await
        .map_err(at("certificate"))?;
    Ok(Issued { chain, key })
}

/// Answers each pending authorization's challenge (through `state`, where
/// the listeners find it) and tells the CA it is ready.
async fn answer_challenges<'s>(
    order: &mut instant_acme::Order,
    settings: &AcmeSettings,
    server: &str,
    state: &'s State,
) -> Result<Answers<'s>, OrderError> {
    let mut answers = Answers {
        state,
        given: Vec::new(),
    };
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.map_err(at("authorization"))?;
        let name = match authz.identifier().identifier {
            Identifier::Dns(n) => n.clone(),
            other => {
                return Err(OrderError::Refused(format!(
                    "unexpected identifier {other:?}"
                )))
            }
        };
        match authz.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => {
                tracing::info!(server, name, "ACME authorization already valid");
                continue;
            }
            other => {
                return Err(OrderError::Refused(format!(
                    "authorization for {name} is {other:?}"
                )))
            }
        }
        let kind = match settings.challenge {
            AcmeChallenge::Http01 => ChallengeType::Http01,
            AcmeChallenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
        };
        let mut challenge = authz.challenge(kind.clone()).ok_or_else(|| {
            OrderError::Refused(format!("the CA offers no {kind:?} challenge for {name}"))
        })?;
        let key_authorization = challenge.key_authorization();
        match settings.challenge {
            AcmeChallenge::Http01 => {
                let token = challenge.token.clone();
                state.set_http01(&token, Some(key_authorization.as_str().to_string()));
                answers.given.push(Answer::Http01(token));
            }
            AcmeChallenge::TlsAlpn01 => {
                let cert = alpn_certificate(&name, key_authorization.digest().as_ref())?;
                state.alpn.set(&name, Some(cert));
                answers.given.push(Answer::TlsAlpn01(name.clone()));
            }
        }
        challenge.set_ready().await.map_err(at("challenge ready"))?;
        tracing::info!(server, name, challenge = ?kind, "ACME challenge answered; waiting for validation");
    }
    Ok(answers)
}

/// The stored account for the directory, or a new one (stored).
async fn account(settings: &AcmeSettings, storage: &Storage) -> Result<Account, OrderError> {
    let builder = || match &settings.ca {
        Some(ca) => Account::builder_with_root(ca),
        None => Account::builder(),
    };
    if let Some(json) = storage.read_account(&settings.directory) {
        match serde_json::from_str::<AccountCredentials>(&json) {
            Ok(creds) => {
                return builder()
                    .map_err(at("account"))?
                    .from_credentials(creds)
                    .await
                    .map_err(at("account"));
            }
            Err(e) => tracing::warn!("stored ACME account unreadable ({e}); creating a new one"),
        }
    }
    let contact = settings.email.as_ref().map(|e| format!("mailto:{e}"));
    let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
    let (account, creds) = builder()
        .map_err(at("account"))?
        .create(
            &NewAccount {
                contact: &contacts,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            settings.directory.clone(),
            None,
        )
        .await
        .map_err(at("new account"))?;
    let json = serde_json::to_string(&creds).map_err(|e| OrderError::Refused(e.to_string()))?;
    storage.write_account(&settings.directory, &json)?;
    tracing::info!(directory = %settings.directory, id = account.id(), "ACME account created");
    Ok(account)
}

/// The TLS-ALPN-01 certificate for `name` (RFC 8737): self-signed, with
/// the SHA-256 of the key authorization in a critical acmeIdentifier
/// extension.
fn alpn_certificate(name: &str, digest: &[u8]) -> Result<Arc<CertifiedKey>, OrderError> {
    let fail = |e: rcgen::Error| OrderError::Refused(format!("TLS-ALPN-01 certificate: {e}"));
    let key = rcgen::KeyPair::generate().map_err(fail)?;
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).map_err(fail)?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let cert = params.self_signed(&key).map_err(fail)?;
    let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    // Not `CertifiedKey::from_der`: its key check parses the certificate
    // with webpki, which refuses the critical acmeIdentifier extension.
    let signing = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| OrderError::Refused(format!("TLS-ALPN-01 key: {e}")))?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signing,
    )))
}

enum Answer {
    Http01(String),
    TlsAlpn01(String),
}

/// The challenge answers given for an order, withdrawn when it is done.
struct Answers<'a> {
    state: &'a State,
    given: Vec<Answer>,
}

impl Drop for Answers<'_> {
    fn drop(&mut self) {
        for a in &self.given {
            match a {
                Answer::Http01(token) => self.state.set_http01(token, None),
                Answer::TlsAlpn01(name) => self.state.alpn.set(name, None),
            }
        }
    }
}

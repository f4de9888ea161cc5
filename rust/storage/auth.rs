//! Bearer tokens for HTTP origins.
//!
//! The Python layer resolves a Hugging Face Hub id to a URL under the Hub endpoint
//! (`HF_ENDPOINT`) and hands the token huggingface_hub found (`HF_TOKEN`, the saved login)
//! over here for that origin only: requests to any other host never carry it.

use std::sync::Mutex;

static TOKENS: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

/// Sends `token` to `origin` (`scheme://host[:port]`) from now on; `None` stops sending one.
pub fn set_token(origin: &str, token: Option<&str>) {
    let origin = normalise(origin);
    let mut tokens = TOKENS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    tokens.retain(|(known, _)| *known != origin);
    if let Some(token) = token.filter(|token| !token.is_empty()) {
        tokens.push((origin, token.to_string()));
    }
}

/// The token for `origin`, if one was set.
pub fn token_for(origin: &str) -> Option<String> {
    let origin = normalise(origin);
    let tokens = TOKENS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    tokens
        .iter()
        .find(|(known, _)| *known == origin)
        .map(|(_, token)| token.clone())
}

/// `scheme://host[:port]`, lower-cased, without a path or a default port.
fn normalise(origin: &str) -> String {
    match url::Url::parse(origin) {
        Ok(url) => url.origin().ascii_serialization(),
        Err(_) => origin.trim_end_matches('/').to_ascii_lowercase(),
    }
}

//! Files in object stores and behind HTTP, read with ranged requests (the `object_store`
//! crate: S3, GCS, Azure and plain HTTP behind one async API with retries).
//!
//! Only what a check needs is fetched: a small file whole (config, index, with a size
//! limit checked before the body is read), the first [`PREFIX`] bytes of a safetensors
//! file and, when its header is longer, the rest of the header; the byte ranges of given
//! tensors. A server that ignores `Range` and answers with the whole body is read only up
//! to the bytes needed, then the connection is dropped. Stores are built once per bucket
//! or host from the standard environment variables (`AWS_*`, `GOOGLE_*`, `AZURE_*`) and
//! shared, so their connection pools are too.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::http::HttpBuilder;
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientConfigKey, ClientOptions, GetOptions, GetRange, ObjectMeta, ObjectStore,
    ObjectStoreScheme, RetryConfig,
};
use url::Url;

use super::{auth, runtime};
use crate::checkpoint::error::{CheckpointError, ErrorKind, Result};
use crate::regular_file::Limited;
use crate::safetensors::check_sizes;

/// Bytes asked for in the first request for a safetensors file: the 8-byte length and,
/// for most adapters and shards, the whole header (a 7B LoRA's is about 50 KB), so one
/// round trip usually does. Longer headers take a second request for the rest.
pub const PREFIX: u64 = 64 * 1024;

/// Longest wait for a connection to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The reason given for a missing object.
pub const NOT_FOUND: &str = "not found: HTTP 404 or no such object";

/// Retries of a failed request (server errors, dropped connections), with backoff.
const MAX_RETRIES: usize = 3;

/// The store kinds, by URL scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    S3,
    Gcs,
    Azure,
    Http,
}

/// The store kind a URL names, or `None` for a local path.
pub fn scheme_of(text: &str) -> Option<Scheme> {
    let (scheme, rest) = text.split_once("://")?;
    if rest.is_empty() {
        return None;
    }
    match scheme.to_ascii_lowercase().as_str() {
        "s3" | "s3a" => Some(Scheme::S3),
        "gs" => Some(Scheme::Gcs),
        "az" | "adl" | "azure" | "abfs" | "abfss" => Some(Scheme::Azure),
        "http" | "https" => Some(Scheme::Http),
        _ => None,
    }
}

/// A file (or directory prefix) in a store, and the URL that names it.
#[derive(Debug, Clone)]
pub struct RemoteFile {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    url: String,
}

/// A safetensors header fetched: its JSON bytes, the file's length, and every byte read
/// from the start of the file (tensor data the checks may need is often among them).
pub struct FetchedHeader {
    pub json: Vec<u8>,
    pub file_len: u64,
    pub prefix: Bytes,
}

impl RemoteFile {
    /// The file `url` names, on a store shared with every other URL of its bucket or host.
    pub fn open(url: &str) -> Result<Self> {
        let fail = |reason: String| CheckpointError::new(url, ErrorKind::Io(reason));
        let scheme = scheme_of(url).ok_or_else(|| fail("not a supported URL".into()))?;
        let parsed = Url::parse(url).map_err(|err| fail(format!("not a valid URL ({err})")))?;
        let (_, path) = ObjectStoreScheme::parse(&parsed)
            .map_err(|err| fail(format!("not a valid URL ({err})")))?;
        // `az://container/prefix` names the container as its host (as the Azure builder reads
        // it), but object_store 0.12's URL parser drops the first path segment for `az` as
        // if it were the container: the whole path is the prefix.
        let path = if parsed.scheme() == "az" {
            ObjectPath::from_url_path(parsed.path())
                .map_err(|err| fail(format!("not a valid URL ({err})")))?
        } else {
            path
        };
        let store = shared_store(scheme, &parsed).map_err(fail)?;
        Ok(Self {
            store,
            path,
            url: url.trim_end_matches('/').to_string(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// `name` (which may hold `/`) under this prefix.
    pub fn join(&self, name: &str) -> Self {
        let parts = name
            .split('/')
            .filter(|part| !part.is_empty() && *part != ".");
        let path = parts
            .clone()
            .fold(self.path.clone(), |path, part| path.child(part));
        let suffix: Vec<&str> = parts.collect();
        Self {
            store: Arc::clone(&self.store),
            path,
            url: format!("{}/{}", self.url, suffix.join("/")),
        }
    }

    /// The prefix holding this file; itself at the root of its bucket or host.
    pub fn parent(&self) -> Self {
        let parts: Vec<_> = self.path.parts().collect();
        let Some((_, above)) = parts.split_last() else {
            return self.clone();
        };
        let url = self
            .url
            .rsplit_once('/')
            .map_or(self.url.as_str(), |(head, _)| head);
        Self {
            store: Arc::clone(&self.store),
            path: ObjectPath::from_iter(above.iter().cloned()),
            url: url.to_string(),
        }
    }

    pub fn file_name(&self) -> &str {
        self.path.filename().unwrap_or("")
    }

    fn error(&self, reason: impl Into<String>) -> CheckpointError {
        CheckpointError::new(self.url.as_str(), ErrorKind::Io(reason.into()))
    }

    fn failed(&self, err: &object_store::Error) -> CheckpointError {
        self.error(describe(err))
    }

    /// The object's size, ETag and date; `None` when there is no such object.
    pub async fn head(&self) -> Result<Option<ObjectMeta>> {
        match self.store.head(&self.path).await {
            Ok(meta) => Ok(Some(meta)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(err) => Err(self.failed(&err)),
        }
    }

    /// The whole object when it is at most `limit` bytes (checked before the body is
    /// read), else its size; `None` when there is no such object.
    pub async fn fetch_small(&self, limit: u64) -> Result<Option<Limited<(Bytes, ObjectMeta)>>> {
        let result = match self.store.get(&self.path).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(err) => return Err(self.failed(&err)),
        };
        let meta = result.meta.clone();
        if meta.size > limit {
            // The body is not read: dropping the response closes the stream.
            return Ok(Some(Limited::TooLarge(meta.size)));
        }
        let bytes = result.bytes().await.map_err(|err| self.failed(&err))?;
        if bytes.len() as u64 != meta.size {
            return Err(self.truncated(bytes.len() as u64, meta.size));
        }
        Ok(Some(Limited::Within((bytes, meta))))
    }

    /// The 8-byte length and the header of a safetensors file; `None` when there is no
    /// such object. Sizes are checked as for a local file (PK000 kinds name this URL).
    pub async fn fetch_header(&self) -> Result<Option<FetchedHeader>> {
        let options = GetOptions {
            range: Some(GetRange::Bounded(0..PREFIX)),
            ..GetOptions::default()
        };
        let (prefix, file_len) = match self.store.get_opts(&self.path, options).await {
            Ok(result) => {
                let file_len = result.meta.size;
                let bytes = result.bytes().await.map_err(|err| self.failed(&err))?;
                (bytes, file_len)
            }
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(err) if ignores_range(&err) => {
                return self.fetch_header_streaming().await.map(Some);
            }
            Err(err) if is_unsatisfiable(&err) => {
                // An empty object: no byte 0 to start a range at.
                let len = self.head().await?.map_or(0, |meta| meta.size);
                return Err(CheckpointError::new(
                    self.url.as_str(),
                    ErrorKind::TooSmall { len },
                ));
            }
            Err(err) => return Err(self.failed(&err)),
        };
        let expected = PREFIX.min(file_len);
        if (prefix.len() as u64) < expected {
            return Err(self.truncated(prefix.len() as u64, expected));
        }
        self.complete_header(prefix, file_len).await.map(Some)
    }

    /// The header from the bytes read so far, fetching the rest of it when needed.
    async fn complete_header(&self, prefix: Bytes, file_len: u64) -> Result<FetchedHeader> {
        let header_len = self.header_len(&prefix, file_len)?;
        let end = 8 + header_len;
        let json = if prefix.len() as u64 >= end {
            prefix.slice(8..end as usize).to_vec()
        } else {
            let have = prefix.len() as u64;
            let rest = self.fetch_range(have..end).await?;
            let mut json = Vec::with_capacity(header_len as usize);
            json.extend_from_slice(&prefix[8..]);
            json.extend_from_slice(&rest);
            json
        };
        Ok(FetchedHeader {
            json,
            file_len,
            prefix,
        })
    }

    /// The header length from the first 8 bytes, checked against the file's length.
    fn header_len(&self, prefix: &[u8], file_len: u64) -> Result<u64> {
        let Some(first) = prefix.get(..8) else {
            return Err(CheckpointError::new(
                self.url.as_str(),
                ErrorKind::TooSmall { len: file_len },
            ));
        };
        let mut len_bytes = [0u8; 8];
        len_bytes.copy_from_slice(first);
        let header_len = u64::from_le_bytes(len_bytes);
        if let Some(kind) = check_sizes(header_len, file_len) {
            return Err(CheckpointError::new(self.url.as_str(), kind));
        }
        Ok(header_len)
    }

    /// For a server that ignores `Range`: the whole-body answer read only up to the end
    /// of the header, then dropped.
    async fn fetch_header_streaming(&self) -> Result<FetchedHeader> {
        let result = self
            .store
            .get(&self.path)
            .await
            .map_err(|err| self.failed(&err))?;
        let file_len = result.meta.size;
        let mut stream = result.into_stream();
        let mut buffer = Vec::new();
        let mut needed: Option<u64> = None;
        while let Some(chunk) = stream.next().await {
            buffer.extend_from_slice(&chunk.map_err(|err| self.failed(&err))?);
            if needed.is_none() && buffer.len() >= 8 {
                needed = Some(8 + self.header_len(&buffer, file_len)?);
            }
            if needed.is_some_and(|needed| buffer.len() as u64 >= needed) {
                break;
            }
        }
        drop(stream);
        let needed = needed.unwrap_or(8).min(file_len);
        if (buffer.len() as u64) < needed {
            return Err(self.truncated(buffer.len() as u64, needed));
        }
        self.complete_header(Bytes::from(buffer), file_len).await
    }

    /// The bytes `range` of the object.
    pub async fn fetch_range(&self, range: Range<u64>) -> Result<Bytes> {
        let wanted = range.end.saturating_sub(range.start);
        let bytes = match self.store.get_range(&self.path, range.clone()).await {
            Ok(bytes) => bytes,
            Err(err) if ignores_range(&err) => self.fetch_through(range.end).await?.slice(
                usize::try_from(range.start).unwrap_or(usize::MAX)
                    ..usize::try_from(range.end).unwrap_or(usize::MAX),
            ),
            Err(err) => return Err(self.failed(&err)),
        };
        if bytes.len() as u64 != wanted {
            return Err(self.truncated(bytes.len() as u64, wanted));
        }
        Ok(bytes)
    }

    /// For a server that ignores `Range`: the object's first `end` bytes, read from the
    /// whole-body answer.
    async fn fetch_through(&self, end: u64) -> Result<Bytes> {
        let result = self
            .store
            .get(&self.path)
            .await
            .map_err(|err| self.failed(&err))?;
        let mut stream = result.into_stream();
        let mut buffer = Vec::new();
        while (buffer.len() as u64) < end {
            match stream.next().await {
                Some(chunk) => buffer.extend_from_slice(&chunk.map_err(|err| self.failed(&err))?),
                None => break,
            }
        }
        if (buffer.len() as u64) < end {
            return Err(self.truncated(buffer.len() as u64, end));
        }
        buffer.truncate(end as usize);
        Ok(Bytes::from(buffer))
    }

    fn truncated(&self, got: u64, wanted: u64) -> CheckpointError {
        self.error(format!(
            "the response ended early: {got} of {wanted} bytes arrived (truncated or dropped)"
        ))
    }
}

/// Whether a ranged GET failed because the server answered with the whole object.
fn ignores_range(err: &object_store::Error) -> bool {
    if matches!(err, object_store::Error::NotSupported { .. }) {
        return true;
    }
    let text = err.to_string();
    text.contains("non-partial response") || text.contains("Range request not supported")
}

/// Whether the server said the range starts past the end (HTTP 416).
fn is_unsatisfiable(err: &object_store::Error) -> bool {
    let text = err.to_string();
    text.contains("416") || text.contains("InvalidRange")
}

/// The reason for a failed request, as a user reads it: the status or the network error,
/// without the store's internals.
pub fn describe(err: &object_store::Error) -> String {
    use object_store::Error as E;
    match err {
        E::NotFound { .. } => NOT_FOUND.to_string(),
        E::PermissionDenied { source, .. } | E::Unauthenticated { source, .. } => {
            format!("access denied ({})", innermost(source.as_ref()))
        }
        E::Generic { source, .. } | E::NotSupported { source } => innermost(source.as_ref()),
        other => shorten(&other.to_string()),
    }
}

/// The most specific message in an error chain: a status line or a network failure.
fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut messages = vec![err.to_string()];
    let mut source = err.source();
    while let Some(next) = source {
        messages.push(next.to_string());
        source = next.source();
    }
    let status = messages
        .iter()
        .find_map(|message| message.split_once("Server returned non-2xx status code: "))
        .map(|(_, status)| format!("HTTP {}", status.trim()));
    if messages.iter().any(|message| {
        message.contains("end of file before message length reached")
            || message.contains("connection closed before message completed")
            || message.contains("IncompleteMessage")
    }) {
        return "the connection closed before the whole response arrived".to_string();
    }
    let reason = status.unwrap_or_else(|| {
        // The deepest message names the cause (connection refused, closed, timed out).
        messages
            .iter()
            .rev()
            .find(|message| !message.trim().is_empty())
            .cloned()
            .unwrap_or_default()
    });
    shorten(&reason)
}

/// At most one line of a readable length.
fn shorten(text: &str) -> String {
    const LIMIT: usize = 300;
    let line = text.lines().next().unwrap_or("").trim();
    if line.len() <= LIMIT {
        return line.to_string();
    }
    let mut cut = LIMIT;
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &line[..cut])
}

/// Stores by bucket or host and by the settings they were built with.
static STORES: Mutex<Option<HashMap<String, Arc<dyn ObjectStore>>>> = Mutex::new(None);

/// The store for `url`'s bucket or host, built on first use. The key holds everything the
/// store was configured from, so a changed variable or time limit builds a new one.
fn shared_store(scheme: Scheme, url: &Url) -> std::result::Result<Arc<dyn ObjectStore>, String> {
    let origin = url.origin().ascii_serialization();
    let token = auth::token_for(&origin);
    let timeout = runtime::timeout();
    let key = format!(
        "{scheme:?} {}://{} {timeout:?} {:?} {}",
        url.scheme(),
        url.host_str().unwrap_or("").to_ascii_lowercase()
            + &url.port().map_or(String::new(), |p| format!(":{p}")),
        token,
        environment(scheme).join("\u{1f}"),
    );
    let mut stores = STORES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let stores = stores.get_or_insert_with(HashMap::new);
    if let Some(store) = stores.get(&key) {
        return Ok(Arc::clone(store));
    }
    let store = build_store(scheme, url, timeout, token.as_deref())?;
    stores.insert(key, Arc::clone(&store));
    Ok(store)
}

/// The variables a store of this kind reads, as `NAME=value`.
fn environment(scheme: Scheme) -> Vec<String> {
    let prefixes: &[&str] = match scheme {
        Scheme::S3 => &["AWS_"],
        Scheme::Gcs => &["GOOGLE_"],
        Scheme::Azure => &["AZURE_"],
        Scheme::Http => &[],
    };
    let mut vars: Vec<String> = std::env::vars()
        .filter(|(name, _)| prefixes.iter().any(|prefix| name.starts_with(prefix)))
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    vars.sort_unstable();
    vars
}

fn retry(timeout: Duration) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: MAX_RETRIES,
        retry_timeout: timeout,
    }
}

fn build_store(
    scheme: Scheme,
    url: &Url,
    timeout: Duration,
    token: Option<&str>,
) -> std::result::Result<Arc<dyn ObjectStore>, String> {
    let timeout_text = format!("{}ms", timeout.as_millis().max(1));
    let connect_text = format!("{}ms", CONNECT_TIMEOUT.min(timeout).as_millis().max(1));
    let describe_build = |err: object_store::Error| describe(&err);
    // The cloud builders read their own variables (`from_env`); the time limits are set as
    // options so that those variables' client settings (AWS_ALLOW_HTTP...) are kept.
    macro_rules! cloud_store {
        ($builder:ty, $key:path) => {
            Arc::new(
                <$builder>::from_env()
                    .with_url(url.as_str())
                    .with_retry(retry(timeout))
                    .with_config($key(ClientConfigKey::Timeout), &timeout_text)
                    .with_config($key(ClientConfigKey::ConnectTimeout), &connect_text)
                    .build()
                    .map_err(describe_build)?,
            )
        };
    }
    let store: Arc<dyn ObjectStore> = match scheme {
        Scheme::S3 => cloud_store!(AmazonS3Builder, AmazonS3ConfigKey::Client),
        Scheme::Gcs => cloud_store!(GoogleCloudStorageBuilder, GoogleConfigKey::Client),
        Scheme::Azure => cloud_store!(MicrosoftAzureBuilder, AzureConfigKey::Client),
        Scheme::Http => {
            let mut options = ClientOptions::new()
                .with_allow_http(true)
                .with_timeout(timeout)
                .with_connect_timeout(CONNECT_TIMEOUT.min(timeout));
            if let Some(token) = token {
                let mut headers = object_store::HeaderMap::new();
                let value = object_store::HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|_| "the access token holds characters a header cannot".to_string())?;
                headers.insert("authorization", value);
                options = options.with_default_headers(headers);
            }
            let origin = &url[..url::Position::BeforePath];
            Arc::new(
                HttpBuilder::new()
                    .with_url(origin)
                    .with_client_options(options)
                    .with_retry(retry(timeout))
                    .build()
                    .map_err(describe_build)?,
            )
        }
    };
    Ok(store)
}

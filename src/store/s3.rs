//! S3 (or any S3-compatible server): model artifacts, embedding caches and uploaded datasets of
//! hosted projects, shared by every server process.
//!
//! Every request runs on one small runtime owned by the store. actix-web runs one runtime per
//! worker and the trainer threads run none, and an HTTP connection pool must not outlive the
//! runtime its connections were spawned on; with one runtime of its own the store can be called
//! from async handlers (`await`) and from blocking threads (`BlobStore`) alike.

use std::sync::Arc;

use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use serde::{Deserialize, Serialize};

use super::blob::{BlobError, BlobStore};
use crate::metrics::Metrics;

/// Where the bucket is and how to sign in to it.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Options {
    /// Endpoint URL of an S3-compatible server; none = AWS for the region.
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Path-style addressing (`endpoint/bucket/key`), which S3-compatible servers need.
    pub path_style: bool,
    /// Everything the server writes lives under this prefix; imports may not read it.
    pub prefix: String,
    /// Buckets that projects may import datasets from (the main bucket is always allowed).
    pub import_buckets: Vec<String>,
    /// Create the bucket at start when it does not exist.
    pub create_bucket: bool,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            endpoint: None,
            region: "us-east-1".into(),
            bucket: String::new(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            path_style: true,
            prefix: "lightbulb/".into(),
            import_buckets: Vec::new(),
            create_bucket: false,
        }
    }
}

/// The secret stays out of logs.
impl std::fmt::Debug for S3Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Options")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .field("path_style", &self.path_style)
            .field("prefix", &self.prefix)
            .field("import_buckets", &self.import_buckets)
            .field("create_bucket", &self.create_bucket)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("S3 object `{0}` not found")]
    NotFound(String),
    #[error("S3 {op} `{key}`: {message}")]
    Request { op: &'static str, key: String, message: String },
    #[error("S3 configuration: {0}")]
    Config(String),
}

/// One object of a listing.
#[derive(Clone, Debug)]
pub struct Listed {
    pub key: String,
    pub size: u64,
}

pub struct S3Store {
    client: Client,
    runtime: tokio::runtime::Handle,
    options: S3Options,
    metrics: Arc<Metrics>,
}

/// The full message of an SDK error (its Display says only "service error").
fn describe<E: std::error::Error>(e: &E) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl S3Store {
    /// Connects and checks that the bucket answers (creating it when configured to).
    pub async fn connect(options: S3Options, metrics: Arc<Metrics>) -> Result<Arc<Self>, S3Error> {
        if options.bucket.is_empty() {
            return Err(S3Error::Config("no bucket given (s3.bucket)".into()));
        }
        if !options.prefix.is_empty() && !options.prefix.ends_with('/') {
            return Err(S3Error::Config(format!("the prefix `{}` must end with `/`", options.prefix)));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("s3")
            .enable_all()
            .build()
            .map_err(|e| S3Error::Config(format!("starting the S3 runtime: {e}")))?;
        let handle = runtime.handle().clone();
        // The runtime lives as long as the process: the store is created once at start and
        // shared, and dropping a runtime inside another one's async context would panic.
        std::mem::forget(runtime);
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut config = aws_sdk_s3::Config::builder()
            .behavior_version_latest()
            .http_client(http)
            .region(Region::new(options.region.clone()))
            .credentials_provider(Credentials::new(
                options.access_key_id.clone(),
                options.secret_access_key.clone(),
                None,
                None,
                "lightbulb-settings",
            ))
            .force_path_style(options.path_style);
        if let Some(endpoint) = &options.endpoint {
            config = config.endpoint_url(endpoint);
        }
        let store = Arc::new(S3Store { client: Client::from_conf(config.build()), runtime: handle, options, metrics });
        store.check_bucket().await?;
        Ok(store)
    }

    pub fn options(&self) -> &S3Options {
        &self.options
    }

    async fn check_bucket(&self) -> Result<(), S3Error> {
        let client = self.client.clone();
        let bucket = self.options.bucket.clone();
        let create = self.options.create_bucket;
        self.exec(async move {
            match client.head_bucket().bucket(&bucket).send().await {
                Ok(_) => Ok(()),
                Err(e) if create && e.as_service_error().is_some_and(|s| s.is_not_found()) => {
                    client.create_bucket().bucket(&bucket).send().await.map(|_| ()).map_err(|e| S3Error::Request {
                        op: "create bucket",
                        key: bucket.clone(),
                        message: describe(&e),
                    })
                }
                Err(e) => Err(S3Error::Request { op: "open bucket", key: bucket.clone(), message: describe(&e) }),
            }
        })
        .await
    }

    /// Runs `fut` on the store's runtime.
    async fn exec<T: Send + 'static>(&self, fut: impl std::future::Future<Output = T> + Send + 'static) -> T {
        match self.runtime.spawn(fut).await {
            Ok(v) => v,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// Runs `fut` on the store's runtime and waits for it on this (blocking) thread.
    fn block<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = Result<T, S3Error>> + Send + 'static,
    ) -> Result<T, S3Error> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let _ = tx.send(fut.await);
        });
        // The runtime lives as long as the process; a request that panicked drops its sender.
        rx.recv().unwrap_or_else(|_| Err(S3Error::Config("an S3 request panicked".into())))
    }

    fn counted<T>(&self, result: Result<T, S3Error>) -> Result<T, S3Error> {
        if matches!(result, Err(S3Error::Request { .. })) {
            self.metrics.blob_errors.with_label_values(&["s3"]).inc();
        }
        result
    }

    /// The full key of `key` under the server's prefix.
    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.options.prefix)
    }

    /// Stores `bytes` at `key` (a full key) of the main bucket.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), S3Error> {
        let fut = put_object(self.client.clone(), self.options.bucket.clone(), key.to_string(), bytes);
        let result = self.exec(fut).await;
        self.counted(result)
    }

    /// Deletes `key` (a full key) of the main bucket.
    pub async fn delete(&self, key: &str) -> Result<(), S3Error> {
        let (client, bucket, key) = (self.client.clone(), self.options.bucket.clone(), key.to_string());
        let result = self
            .exec(async move {
                client
                    .delete_object()
                    .bucket(&bucket)
                    .key(&key)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| S3Error::Request { op: "delete", key, message: describe(&e) })
            })
            .await;
        self.counted(result)
    }

    /// The object at `key` of `bucket`.
    pub async fn get_from(&self, bucket: &str, key: &str) -> Result<Vec<u8>, S3Error> {
        let fut = get_object(self.client.clone(), bucket.to_string(), key.to_string());
        let result = self.exec(fut).await;
        self.counted(result)
    }

    /// Every object under `prefix` of `bucket`, in key order.
    pub async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<Listed>, S3Error> {
        let client = self.client.clone();
        let (bucket, prefix) = (bucket.to_string(), prefix.to_string());
        let result = self
            .exec(async move {
                let mut out = Vec::new();
                let mut pages = client.list_objects_v2().bucket(&bucket).prefix(&prefix).into_paginator().send();
                while let Some(page) = pages.next().await {
                    let page =
                        page.map_err(|e| S3Error::Request { op: "list", key: prefix.clone(), message: describe(&e) })?;
                    for object in page.contents() {
                        if let Some(key) = object.key() {
                            out.push(Listed { key: key.to_string(), size: object.size().unwrap_or(0).max(0) as u64 });
                        }
                    }
                }
                Ok(out)
            })
            .await;
        self.counted(result)
    }

    /// The blob store of the keys under `prefix` (inside the server's prefix).
    pub fn blobs(self: &Arc<Self>, prefix: &str) -> Arc<dyn BlobStore> {
        Arc::new(S3Blobs { store: self.clone(), prefix: self.key(prefix) })
    }

    /// May a project import from `prefix` of `bucket`? Not from the server's own objects.
    pub fn may_import(&self, bucket: &str, prefix: &str) -> Result<(), String> {
        let allowed = bucket == self.options.bucket || self.options.import_buckets.iter().any(|b| b == bucket);
        if !allowed {
            return Err(format!("bucket `{bucket}` is not one this server imports from"));
        }
        let own = &self.options.prefix;
        if bucket == self.options.bucket
            && (own.is_empty() || prefix.starts_with(own.as_str()) || own.starts_with(prefix))
        {
            return Err(format!("the prefix `{prefix}` overlaps the server's own objects (`{own}`)"));
        }
        Ok(())
    }
}

async fn put_object(client: Client, bucket: String, key: String, bytes: Vec<u8>) -> Result<(), S3Error> {
    client
        .put_object()
        .bucket(&bucket)
        .key(&key)
        .body(ByteStream::from(bytes))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| S3Error::Request { op: "put", key, message: describe(&e) })
}

async fn get_object(client: Client, bucket: String, key: String) -> Result<Vec<u8>, S3Error> {
    let answer = match client.get_object().bucket(&bucket).key(&key).send().await {
        Ok(answer) => answer,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Err(S3Error::NotFound(key)),
        Err(e) => return Err(S3Error::Request { op: "get", key, message: describe(&e) }),
    };
    match answer.body.collect().await {
        Ok(bytes) => Ok(bytes.into_bytes().to_vec()),
        Err(e) => Err(S3Error::Request { op: "read", key, message: describe(&e) }),
    }
}

/// A project's blobs in S3: `<server prefix><project prefix><key>`.
struct S3Blobs {
    store: Arc<S3Store>,
    prefix: String,
}

impl S3Blobs {
    fn full_key(&self, key: &str) -> Result<String, BlobError> {
        let clean = !key.is_empty() && key.split('/').all(|part| !part.is_empty() && part != "." && part != "..");
        if !clean {
            return Err(BlobError::BadKey(key.to_string()));
        }
        Ok(format!("{}{key}", self.prefix))
    }

    fn blob_error(key: &str, e: S3Error) -> BlobError {
        match e {
            S3Error::NotFound(_) => BlobError::NotFound(key.to_string()),
            other => BlobError::Remote { key: key.to_string(), message: other.to_string() },
        }
    }
}

impl BlobStore for S3Blobs {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), BlobError> {
        let full = self.full_key(key)?;
        let fut = put_object(self.store.client.clone(), self.store.options.bucket.clone(), full, bytes.to_vec());
        let result = self.store.block(fut);
        self.store.counted(result).map_err(|e| Self::blob_error(key, e))
    }

    fn get(&self, key: &str) -> Result<Vec<u8>, BlobError> {
        let full = self.full_key(key)?;
        let fut = get_object(self.store.client.clone(), self.store.options.bucket.clone(), full);
        let result = self.store.block(fut);
        self.store.counted(result).map_err(|e| Self::blob_error(key, e))
    }
}
